"""The stub resolver, driven with explicit times: answers, cache, retries, CNAMEs, spoofing."""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence
from typing import Any

import pytest
from construct import Container

from wipstack.dns import DnsError, LookupResult, Resolver, ResolverConfig, parse_dotted_quad
from wipstack.errors import DropReason
from wipstack.wire.dns import DNS_HEADER, DNS_NAME, DnsType, encode_name, parse_response

S1 = bytes([10, 0, 0, 53])
S2 = bytes([10, 0, 0, 54])
ADDR1 = bytes([93, 184, 216, 34])
ADDR2 = bytes([93, 184, 216, 35])
A, CNAME, SOA, AAAA = DnsType.A, DnsType.CNAME, DnsType.SOA, DnsType.AAAA


def make(servers: tuple[bytes, ...] = (S1,), seed: int = 1, **config: Any) -> Resolver:
    return Resolver(random.Random(seed), ResolverConfig(**config), servers)


def name_bytes(name: str) -> bytes:
    return bytes(DNS_NAME.build([label.encode() for label in name.split(".")] + [b""]))


def rr(name: str, rtype: int, data: bytes | str, ttl: int = 300) -> bytes:
    rdata = encode_name(data) if isinstance(data, str) else data
    return name_bytes(name) + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def soa(zone: str, ttl: int, minimum: int) -> bytes:
    rdata = encode_name("ns." + zone) + encode_name("admin." + zone) + struct.pack("!5I", 1, 7200, 900, 86400, minimum)
    return rr(zone, SOA, rdata, ttl)


def respond(
    query: bytes,
    answers: Sequence[bytes] = (),
    *,
    rcode: int = 0,
    authority: Sequence[bytes] = (),
    tc: bool = False,
    qr: bool = True,
    ident: int | None = None,
    question: bytes | None = None,
) -> bytes:
    """A response to ``query`` built with the declaration (names uncompressed)."""
    parsed = parse_response(query)
    if question is None:
        question = query[12:]
    flags = Container(qr=qr, opcode=0, aa=False, tc=tc, rd=True, ra=True, z=0, rcode=rcode)
    header = Container(
        id=parsed.header.ident if ident is None else ident,
        flags=flags,
        qdcount=1 if question else 0,
        ancount=len(answers),
        nscount=len(authority),
        arcount=0,
    )
    return bytes(DNS_HEADER.build(header)) + question + b"".join(answers) + b"".join(authority)


def sent(resolver: Resolver) -> list[tuple[bytes, int, bytes]]:
    return resolver.datagrams_to_send()


def only(resolver: Resolver) -> tuple[bytes, bytes]:
    """The one datagram to send: (server, query)."""
    datagrams = sent(resolver)
    assert len(datagrams) == 1, datagrams
    server, port, payload = datagrams[0]
    assert port == 53
    return server, payload


def qname(payload: bytes) -> str:
    return parse_response(payload).questions[0].name


def results(resolver: Resolver) -> list[LookupResult]:
    out = []
    while (result := resolver.next_result()) is not None:
        out.append(result)
    return out


# ---- the happy path and the cache ----


def test_happy_path() -> None:
    resolver = make()
    handle = resolver.lookup("example.com", 0.0)
    assert resolver.result(handle) is None and resolver.next_result() is None
    server, query = only(resolver)
    assert server == S1
    message = parse_response(query)
    assert message.header.rd and not message.header.qr and message.header.qdcount == 1
    assert (message.questions[0].name, message.questions[0].qtype, message.questions[0].qclass) == ("example.com", 1, 1)
    assert resolver.next_deadline() == 2.0
    resolver.receive_datagram(S1, 53, respond(query, [rr("example.com", A, ADDR1), rr("example.com", A, ADDR2)]), 0.5)
    expected = LookupResult(handle, "example.com", (ADDR1, ADDR2), "example.com", None, 300.0)
    assert resolver.result(handle) == expected
    assert resolver.next_result() == expected and expected.ok
    assert resolver.result(handle) is None and resolver.next_result() is None
    assert resolver.next_deadline() is None and resolver.pending == 0
    assert not resolver.drops and sent(resolver) == []


def answer_once(resolver: Resolver, name: str, answers: list[bytes], now: float) -> LookupResult:
    resolver.lookup(name, now)
    server, query = only(resolver)
    resolver.receive_datagram(server, 53, respond(query, answers), now)
    [result] = results(resolver)
    return result


def test_cache_hit_is_case_insensitive_and_immediate() -> None:
    resolver = make()
    answer_once(resolver, "Example.COM", [rr("example.com", A, ADDR1, ttl=100)], 0.0)
    handle = resolver.lookup("eXample.com.", 40.0)
    assert sent(resolver) == []
    assert resolver.next_result() == LookupResult(handle, "eXample.com.", (ADDR1,), "Example.COM", None, 60.0)


def test_ttl_expiry_sends_a_new_query() -> None:
    resolver = make()
    answer_once(resolver, "example.com", [rr("example.com", A, ADDR1, ttl=100)], 0.0)
    resolver.lookup("example.com", 99.9)
    assert sent(resolver) == [] and results(resolver)[0].ttl == pytest.approx(0.1)
    resolver.lookup("example.com", 100.0)  # expired entries are never returned
    assert qname(only(resolver)[1]) == "example.com"
    assert results(resolver) == []


def test_ttl_is_capped_and_the_minimum_of_the_records() -> None:
    resolver = make(max_cache_ttl=600.0)
    result = answer_once(resolver, "a.example", [rr("a.example", A, ADDR1, ttl=100000)], 0.0)
    assert result.ttl == 600.0
    result = answer_once(resolver, "b.example", [rr("b.example", A, ADDR1, 50), rr("b.example", A, ADDR2, 20)], 0.0)
    assert result.ttl == 20.0 and result.addresses == (ADDR1, ADDR2)
    # RFC 2181 §8: a TTL with the top bit set counts as zero, and zero is not cached
    result = answer_once(resolver, "c.example", [rr("c.example", A, ADDR1, 0x80000000)], 0.0)
    assert result.ttl == 0.0
    resolver.lookup("c.example", 0.0)
    assert len(sent(resolver)) == 1


def test_cache_is_lru_bounded() -> None:
    resolver = make(cache_size=2)
    for name in ("a.example", "b.example", "c.example"):
        answer_once(resolver, name, [rr(name, A, ADDR1)], 0.0)
    resolver.lookup("b.example", 1.0)  # hit: b becomes the most recent
    resolver.lookup("c.example", 1.0)
    assert sent(resolver) == []
    resolver.lookup("a.example", 1.0)  # evicted first
    assert len(sent(resolver)) == 1


def test_cache_disabled() -> None:
    resolver = make(cache_size=0)
    answer_once(resolver, "example.com", [rr("example.com", A, ADDR1)], 0.0)
    resolver.lookup("example.com", 1.0)
    assert len(sent(resolver)) == 1


# ---- retries and timeouts ----


def test_retry_goes_to_the_second_server_with_a_new_id() -> None:
    resolver = make((S1, S2))
    handle = resolver.lookup("example.com", 0.0)
    server, first = only(resolver)
    assert server == S1
    resolver.on_timer(1.9)
    assert sent(resolver) == []
    resolver.on_timer(2.0)
    server, second = only(resolver)
    assert server == S2 and resolver.next_deadline() == 4.0
    assert first[:2] != second[:2] and first[2:] == second[2:]
    resolver.receive_datagram(S2, 53, respond(second, [rr("example.com", A, ADDR1)]), 2.5)
    assert resolver.next_result() == LookupResult(handle, "example.com", (ADDR1,), "example.com", None, 300.0)


def test_late_answer_to_an_earlier_attempt_is_accepted() -> None:
    resolver = make((S1, S2))
    resolver.lookup("example.com", 0.0)
    _, first = only(resolver)
    resolver.on_timer(2.0)
    only(resolver)
    resolver.receive_datagram(S1, 53, respond(first, [rr("example.com", A, ADDR1)]), 2.1)
    assert results(resolver)[0].addresses == (ADDR1,)
    assert not resolver.drops


def test_timeout_after_attempts_times_servers() -> None:
    resolver = make((S1, S2), attempts=3, timeout=1.5)
    handle = resolver.lookup("example.com", 0.0)
    servers, idents = [], set()
    now = 0.0
    while (deadline := resolver.next_deadline()) is not None:
        for server, _, payload in sent(resolver):
            servers.append(server)
            idents.add(payload[:2])
        assert deadline == pytest.approx(now + 1.5)
        now = deadline
        resolver.on_timer(now)
    assert servers == [S1, S2, S1, S2, S1, S2] and len(idents) == 6
    assert now == pytest.approx(9.0)
    [result] = results(resolver)
    assert (result.handle, result.error, result.addresses, result.ttl) == (handle, DnsError.TIMEOUT, (), 0.0)
    assert not result.ok and sent(resolver) == []


def test_servfail_moves_on_then_server_failure() -> None:
    resolver = make((S1, S2))
    resolver.lookup("example.com", 0.0)
    server, query = only(resolver)
    resolver.receive_datagram(server, 53, respond(query, rcode=2), 0.1)  # SERVFAIL
    server, query = only(resolver)
    assert server == S2
    resolver.receive_datagram(server, 53, respond(query, rcode=5, question=b""), 0.2)  # REFUSED, no question
    assert sent(resolver) == []
    assert [r.error for r in results(resolver)] == [DnsError.SERVER_FAILURE]
    resolver.lookup("example.com", 1.0)  # failures are not cached
    assert len(sent(resolver)) == 1


def test_truncated_response_is_a_server_failure() -> None:
    resolver = make((S1, S2))
    resolver.lookup("example.com", 0.0)
    _, query = only(resolver)
    resolver.receive_datagram(S1, 53, respond(query, [rr("example.com", A, ADDR1)], tc=True), 0.1)
    server, query = only(resolver)  # no TCP fallback: the next server is asked
    assert server == S2
    resolver.receive_datagram(S2, 53, respond(query, [rr("example.com", A, ADDR2)]), 0.2)
    assert results(resolver)[0].addresses == (ADDR2,)


def test_failed_server_is_skipped_and_timeouts_then_report_server_failure() -> None:
    resolver = make((S1, S2), attempts=2)
    resolver.lookup("example.com", 0.0)
    _, query = only(resolver)
    resolver.receive_datagram(S1, 53, respond(query, rcode=2), 0.1)
    assert only(resolver)[0] == S2
    resolver.on_timer(2.1)
    assert only(resolver)[0] == S2  # S1 failed for this query: not asked again
    resolver.on_timer(4.1)
    assert [r.error for r in results(resolver)] == [DnsError.SERVER_FAILURE]


# ---- negative answers ----


def test_nxdomain_cached_for_the_soa_minimum() -> None:
    resolver = make()
    handle = resolver.lookup("nope.example", 0.0)
    _, query = only(resolver)
    resolver.receive_datagram(S1, 53, respond(query, rcode=3, authority=[soa("example", 900, 120)]), 0.0)
    assert resolver.next_result() == LookupResult(handle, "nope.example", (), "nope.example", DnsError.NXDOMAIN, 120.0)
    resolver.lookup("NOPE.example", 119.0)
    assert sent(resolver) == [] and results(resolver)[0].error is DnsError.NXDOMAIN
    resolver.lookup("nope.example", 120.0)
    assert len(sent(resolver)) == 1


def test_nxdomain_soa_ttl_below_minimum_and_default() -> None:
    resolver = make(negative_ttl=45.0)
    resolver.lookup("a.example", 0.0)
    _, query = only(resolver)
    resolver.receive_datagram(S1, 53, respond(query, rcode=3, authority=[soa("example", 30, 120)]), 0.0)
    assert results(resolver)[0].ttl == 30.0
    resolver.lookup("b.example", 0.0)
    _, query = only(resolver)
    resolver.receive_datagram(S1, 53, respond(query, rcode=3), 0.0)
    assert results(resolver)[0].ttl == 45.0


def test_no_answer() -> None:
    resolver = make()
    handle = resolver.lookup("v6only.example", 0.0)
    _, query = only(resolver)
    resolver.receive_datagram(S1, 53, respond(query, [rr("v6only.example", AAAA, bytes(16))]), 0.0)
    result = resolver.next_result()
    assert result == LookupResult(handle, "v6only.example", (), "v6only.example", DnsError.NO_ANSWER, 60.0)
    resolver.lookup("v6only.example", 1.0)  # NODATA is cached too (RFC 2308 §5)
    assert sent(resolver) == [] and results(resolver)[0].error is DnsError.NO_ANSWER


def test_a_records_of_other_names_are_not_used() -> None:
    resolver = make()
    result = answer_once(resolver, "a.example", [rr("b.example", A, ADDR1)], 0.0)
    assert result.error is DnsError.NO_ANSWER


# ---- CNAMEs ----


def test_cname_inside_the_answer() -> None:
    resolver = make()
    answers = [rr("www.example.com", CNAME, "Example.com", ttl=30), rr("example.com", A, ADDR1, ttl=300)]
    result = answer_once(resolver, "www.example.com", answers, 0.0)
    assert (result.addresses, result.canonical_name, result.ttl, result.error) == ((ADDR1,), "Example.com", 30.0, None)
    assert sent(resolver) == []


def test_cname_needing_a_second_query() -> None:
    resolver = make()
    handle = resolver.lookup("www.example.com", 0.0)
    _, query = only(resolver)
    resolver.receive_datagram(S1, 53, respond(query, [rr("www.example.com", CNAME, "cdn.example.net", ttl=50)]), 0.5)
    assert resolver.result(handle) is None
    server, query = only(resolver)
    assert server == S1 and qname(query) == "cdn.example.net"
    assert resolver.next_deadline() == 2.5
    resolver.receive_datagram(S1, 53, respond(query, [rr("cdn.example.net", A, ADDR2, ttl=500)]), 0.6)
    assert resolver.next_result() == LookupResult(handle, "www.example.com", (ADDR2,), "cdn.example.net", None, 50.0)
    resolver.lookup("www.example.com", 10.0)  # cached under the name asked for
    assert sent(resolver) == [] and results(resolver)[0].canonical_name == "cdn.example.net"


def test_cname_target_from_the_cache() -> None:
    resolver = make()
    answer_once(resolver, "cdn.example.net", [rr("cdn.example.net", A, ADDR2, ttl=20)], 0.0)
    result = answer_once(resolver, "www.example.com", [rr("www.example.com", CNAME, "cdn.example.net")], 5.0)
    assert (result.addresses, result.ttl) == ((ADDR2,), 15.0)


def test_cname_then_nxdomain_is_about_the_target() -> None:
    resolver = make()
    resolver.lookup("www.example.com", 0.0)
    _, query = only(resolver)
    resolver.receive_datagram(S1, 53, respond(query, [rr("www.example.com", CNAME, "gone.example")], rcode=3), 0.0)
    [result] = results(resolver)
    assert (result.error, result.canonical_name) == (DnsError.NXDOMAIN, "gone.example")
    assert sent(resolver) == []


def test_cname_loop_inside_the_answer() -> None:
    resolver = make()
    answers = [rr("a.example", CNAME, "b.example"), rr("b.example", CNAME, "A.example")]
    result = answer_once(resolver, "b.example", answers, 0.0)  # b -> A -> b
    assert result.error is DnsError.CNAME_LOOP
    assert sent(resolver) == []


def test_cname_loop_across_queries() -> None:
    resolver = make()
    resolver.lookup("a.example", 0.0)
    _, query = only(resolver)
    resolver.receive_datagram(S1, 53, respond(query, [rr("a.example", CNAME, "b.example")]), 0.0)
    _, query = only(resolver)
    resolver.receive_datagram(S1, 53, respond(query, [rr("b.example", CNAME, "a.example")]), 0.0)
    assert [r.error for r in results(resolver)] == [DnsError.CNAME_LOOP]
    assert sent(resolver) == [] and resolver.pending == 0


def test_cname_chain_too_long() -> None:
    resolver = make(max_cname_chain=2)
    chain = [rr(f"n{i}.example", CNAME, f"n{i + 1}.example") for i in range(3)] + [rr("n3.example", A, ADDR1)]
    assert answer_once(resolver, "n0.example", chain, 0.0).error is DnsError.CNAME_LOOP
    assert answer_once(resolver, "n1.example", chain, 0.0).addresses == (ADDR1,)  # two CNAMEs: fine


# ---- spoofing and stray datagrams ----


def test_spoofed_and_stray_responses_are_dropped() -> None:
    resolver = make((S1, S2))
    handle = resolver.lookup("example.com", 0.0)
    _, query = only(resolver)
    good = [rr("example.com", A, ADDR1)]
    ident = parse_response(query).header.ident
    evil = [rr("example.com", A, bytes([6, 6, 6, 6]))]
    resolver.receive_datagram(S1, 53, respond(query, evil, ident=ident ^ 1), 0.1)  # wrong ID
    resolver.receive_datagram(S2, 53, respond(query, evil), 0.1)  # wrong server
    resolver.receive_datagram(S1, 5353, respond(query, evil), 0.1)  # wrong port
    assert resolver.drops == {DropReason.UNEXPECTED_ID: 3}
    resolver.receive_datagram(S1, 53, respond(query, evil, question=name_bytes("evil.example") + b"\0\1\0\1"), 0.1)
    resolver.receive_datagram(S1, 53, respond(query, evil, question=query[12:-4] + b"\0\x1c\0\1"), 0.1)  # AAAA
    resolver.receive_datagram(S1, 53, respond(query, evil, qr=False), 0.1)  # a query, not a response
    resolver.receive_datagram(S1, 53, respond(query, evil, question=b""), 0.1)  # NOERROR without the question
    resolver.receive_datagram(S1, 53, b"\x00", 0.1)
    assert resolver.drops == {DropReason.UNEXPECTED_ID: 3, DropReason.BAD_VALUE: 4, DropReason.TRUNCATED: 1}
    assert resolver.result(handle) is None
    resolver.receive_datagram(S1, 53, respond(query, good, question=query[12:].upper()), 0.2)  # case-insensitive
    assert results(resolver)[0].addresses == (ADDR1,)
    resolver.receive_datagram(S1, 53, respond(query, good), 0.3)  # a duplicate: no longer outstanding
    assert resolver.drops[DropReason.UNEXPECTED_ID] == 4


def test_cancel() -> None:
    resolver = make()
    handle = resolver.lookup("example.com", 0.0)
    resolver.cancel(handle)
    assert sent(resolver) == [] and resolver.next_deadline() is None
    done = resolver.lookup("10.1.2.3", 0.0)
    resolver.cancel(done)
    assert resolver.result(done) is None and resolver.next_result() is None


def test_answer_after_cancel_is_dropped() -> None:
    resolver = make()
    handle = resolver.lookup("example.com", 0.0)
    _, query = only(resolver)
    resolver.cancel(handle)
    resolver.receive_datagram(S1, 53, respond(query, [rr("example.com", A, ADDR1)]), 0.1)
    assert resolver.drops == {DropReason.UNEXPECTED_ID: 1} and resolver.next_result() is None


# ---- lookups that complete at once ----


def test_dotted_quad_needs_no_traffic_nor_servers() -> None:
    resolver = make(())
    handle = resolver.lookup("192.0.2.1", 0.0)
    assert sent(resolver) == [] and resolver.next_deadline() is None
    assert resolver.next_result() == LookupResult(handle, "192.0.2.1", (bytes([192, 0, 2, 1]),), "192.0.2.1", None, 0.0)


@pytest.mark.parametrize("name", ["", ".", "a..b", "bücher.de", "a b", "x" * 64])
def test_bad_name(name: str) -> None:
    resolver = make()
    resolver.lookup(name, 0.0)
    assert sent(resolver) == [] and [r.error for r in results(resolver)] == [DnsError.BAD_NAME]


def test_no_servers_then_servers_learned() -> None:
    resolver = make(())
    resolver.lookup("example.com", 0.0)
    assert [r.error for r in results(resolver)] == [DnsError.NO_SERVERS]
    resolver.servers = [S2]
    resolver.lookup("example.com", 1.0)
    assert only(resolver)[0] == S2
    with pytest.raises(ValueError):
        resolver.servers = [b"\x01\x02\x03"]


def test_too_many_pending() -> None:
    resolver = make(max_pending=2)
    first = resolver.lookup("a.example", 0.0)
    second = resolver.lookup("b.example", 0.0)
    third = resolver.lookup("c.example", 0.0)
    assert len(sent(resolver)) == 2 and resolver.pending == 2
    [result] = results(resolver)
    assert (result.handle, result.error) == (third, DnsError.TOO_MANY_PENDING)
    assert len({first, second, third}) == 3
    resolver.lookup("10.0.0.1", 0.0)  # literals and cache hits never count
    assert results(resolver)[0].ok


def test_results_in_completion_order() -> None:
    resolver = make()
    first = resolver.lookup("a.example", 0.0)
    second = resolver.lookup("b.example", 0.0)
    queries = {qname(payload): payload for _, _, payload in sent(resolver)}
    resolver.receive_datagram(S1, 53, respond(queries["b.example"], [rr("b.example", A, ADDR2)]), 0.1)
    resolver.receive_datagram(S1, 53, respond(queries["a.example"], [rr("a.example", A, ADDR1)]), 0.2)
    assert resolver.result(first) is not None and resolver.result(second) is not None
    assert [r.handle for r in results(resolver)] == [second, first]


def test_ids_come_from_the_rng() -> None:
    payloads = []
    for _ in range(2):
        resolver = make(seed=7)
        resolver.lookup("example.com", 0.0)
        payloads.append(only(resolver)[1])
    assert payloads[0] == payloads[1]
    assert only_id(payloads[0]) == random.Random(7).getrandbits(16)


def only_id(payload: bytes) -> int:
    return int.from_bytes(payload[:2], "big")


# ---- parse_dotted_quad ----


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0", b"\0\0\0\0"),
        ("255.255.255.255", b"\xff\xff\xff\xff"),
        ("10.0.0.1", b"\x0a\0\0\x01"),
        ("01.2.3.4", None),
        ("1.2.3.00", None),
        ("256.1.1.1", None),
        ("1.2.3", None),
        ("1.2.3.4.5", None),
        ("1.2.3.", None),
        ("1..3.4", None),
        (" 1.2.3.4", None),
        ("+1.2.3.4", None),
        ("1.2.3.4 ", None),
        ("0x1.2.3.4", None),
        ("١.2.3.4", None),  # Arabic-Indic digit one: str.isdigit() but not ASCII
        ("1234.1.1.1", None),
        ("example.com", None),
        ("", None),
    ],
)
def test_parse_dotted_quad(text: str, expected: bytes | None) -> None:
    assert parse_dotted_quad(text) == expected


def test_config_validation() -> None:
    for bad in ({"timeout": 0}, {"attempts": 0}, {"max_pending": 0}, {"cache_size": -1}, {"negative_ttl": -1}):
        with pytest.raises(ValueError):
            ResolverConfig(**bad)
