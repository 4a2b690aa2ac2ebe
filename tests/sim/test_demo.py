"""The README's demo, run in-process: three nodes, two PPP links over pty pairs, routing."""

from __future__ import annotations

from pathlib import Path

from wipstack.drivers.demo import run_demo


def test_demo_runs_end_to_end() -> None:
    lines: list[str] = []
    assert run_demo(seed=3, log=lines.append) == 0, "\n".join(lines)
    text = "\n".join(lines)
    assert "demo: OK" in text
    assert "client: ppp0: DNS servers 198.51.100.2" in text  # learned through IPCP (RFC 1877)
    assert "canonical name host.demo.example" in text
    assert "nothing.demo.example: name does not exist" in text
    assert "200 echoed, 200 intact" in text
    assert "port unreachable from 198.51.100.2" in text
    assert "time to live exceeded from 192.0.2.1" in text
    assert "1000000 echoed intact" in text and "MSS 524" in text  # TCP through the router, MSS from the MRU
    assert "gateway/ppp1" in text and "link ended: cleanly" in text


def test_demo_capture_holds_all_four_ppp_ends(tmp_path: Path) -> None:
    from wipstack.drivers.pcap import read_pcapng

    capture = tmp_path / "demo.pcapng"
    assert run_demo(seed=4, log=lambda line: None, pcap=str(capture)) == 0
    with capture.open("rb") as stream:
        packets = read_pcapng(stream)
    names = {p.interface_name for p in packets}
    assert names == {"gateway-ppp0", "gateway-ppp1", "client-ppp0", "host-ppp0"}
    lcp = [p for p in packets if p.data[:4] == b"\xff\x03\xc0\x21"]  # LCP always goes out uncompressed
    assert lcp and {p.direction for p in lcp} == {1, 2}
