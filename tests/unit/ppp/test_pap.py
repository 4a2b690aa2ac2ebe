"""PAP (RFC 1334 §2): the authenticatee (``PapClient``) and the authenticator (``PapServer``)."""

from __future__ import annotations

import pytest

from wipstack.errors import DropReason
from wipstack.ppp.config import PapConfig
from wipstack.ppp.pap import PapClient, PapServer, PapState
from wipstack.wire.cp import CpPacket
from wipstack.wire.pap import PapCode, PapRequest, PapResponse

ALICE = PapConfig(username="alice", password="s3cret", secrets=(("alice", "s3cret"), ("bob", "hunter2")))


def response(code: int, identifier: int, message: bytes = b"") -> bytes:
    return CpPacket(code, identifier, PapResponse(message).emit()).emit()


def auth_request(identifier: int, user: bytes = b"alice", password: bytes = b"s3cret") -> bytes:
    return CpPacket(PapCode.AUTHENTICATE_REQUEST, identifier, PapRequest(user, password).emit()).emit()


def started_client(config: PapConfig = ALICE, now: float = 0.0) -> tuple[PapClient, CpPacket]:
    client = PapClient(config)
    client.start(now)
    [first] = client.drain_packets()
    return client, first


def listening_server(config: PapConfig = ALICE, now: float = 0.0) -> PapServer:
    server = PapServer(config)
    server.start(now)
    return server


# ----------------------------------------------------------------------------- client


class TestClient:
    def test_start_sends_authenticate_request_with_credentials(self) -> None:
        client, first = started_client()
        assert first == CpPacket(PapCode.AUTHENTICATE_REQUEST, 1, b"\x05alice\x06s3cret")
        assert client.state == PapState.AUTH_REQ
        assert client.next_deadline() == 3.0

    def test_start_without_username_fails_at_once(self) -> None:
        client = PapClient(PapConfig())
        client.start(0.0)
        assert client.failed
        assert client.drain_packets() == []
        assert client.next_deadline() is None

    def test_auth_req_timer_never_fires_early(self) -> None:
        client, _ = started_client()
        client.on_timer(2.999)
        assert client.drain_packets() == []

    def test_auth_req_timeout_retransmits_with_a_new_identifier(self) -> None:
        # RFC 1334 §2.2.1: the Identifier MUST be changed each time a request is issued
        client, first = started_client()
        client.on_timer(3.0)
        [second] = client.drain_packets()
        assert second.data == first.data
        assert second.identifier != first.identifier
        assert client.next_deadline() == 6.0

    @pytest.mark.parametrize("max_requests", [1, 3, 10])
    def test_auth_req_gives_up_after_max_requests(self, max_requests: int) -> None:
        client, _ = started_client(PapConfig(username="alice", max_requests=max_requests))
        sent = 1
        while (deadline := client.next_deadline()) is not None:
            client.on_timer(deadline)
            sent += len(client.drain_packets())
        assert sent == max_requests
        assert client.failed
        assert deadline is None

    def test_gives_up_exactly_one_interval_after_the_last_request(self) -> None:
        client, _ = started_client(PapConfig(username="alice", max_requests=2, restart_interval=5.0))
        client.on_timer(5.0)
        client.on_timer(9.999)
        assert not client.failed
        client.on_timer(10.0)
        assert client.failed

    def test_auth_req_ack_with_matching_id_succeeds(self) -> None:
        client, first = started_client()
        client.receive(response(PapCode.AUTHENTICATE_ACK, first.identifier, b"Login ok"), 0.5)
        assert client.succeeded
        assert client.reason == "Login ok"
        assert client.next_deadline() is None

    @pytest.mark.parametrize("code", [PapCode.AUTHENTICATE_ACK, PapCode.AUTHENTICATE_NAK])
    def test_auth_req_answer_with_wrong_id_dropped_and_counted(self, code: PapCode) -> None:
        client, first = started_client()
        client.receive(response(code, first.identifier + 1), 0.5)
        assert client.state == PapState.AUTH_REQ
        assert client.drops[DropReason.UNEXPECTED_ID] == 1

    def test_auth_req_answer_to_superseded_request_dropped(self) -> None:
        client, first = started_client()
        client.on_timer(3.0)
        client.receive(response(PapCode.AUTHENTICATE_NAK, first.identifier), 3.5)
        assert client.state == PapState.AUTH_REQ

    def test_auth_req_nak_fails(self) -> None:
        client, first = started_client()
        client.receive(response(PapCode.AUTHENTICATE_NAK, first.identifier, b"Login incorrect"), 0.5)
        assert client.failed
        assert client.next_deadline() is None
        assert client.drain_packets() == []

    def test_auth_req_ack_without_message_body_accepted(self) -> None:
        client, first = started_client()
        client.receive(CpPacket(PapCode.AUTHENTICATE_ACK, first.identifier).emit(), 0.5)
        assert client.succeeded

    def test_open_duplicate_ack_ignored(self) -> None:
        client, first = started_client()
        client.receive(response(PapCode.AUTHENTICATE_ACK, first.identifier), 0.5)
        client.receive(response(PapCode.AUTHENTICATE_NAK, first.identifier), 0.6)
        assert client.succeeded
        assert client.drops[DropReason.UNEXPECTED_ID] == 1

    def test_malformed_answer_counted(self) -> None:
        client, first = started_client()
        client.receive(CpPacket(PapCode.AUTHENTICATE_ACK, first.identifier, b"\x09short").emit(), 0.5)
        assert client.state == PapState.AUTH_REQ
        assert client.drops[DropReason.BAD_LENGTH] == 1

    def test_unknown_code_with_matching_id_counted(self) -> None:
        client, first = started_client()
        client.receive(response(7, first.identifier), 0.5)
        assert client.state == PapState.AUTH_REQ
        assert client.drops[DropReason.BAD_CODE] == 1

    def test_stop_forgets_everything(self) -> None:
        client, first = started_client()
        client.stop()
        assert client.state == PapState.INITIAL
        assert client.next_deadline() is None
        client.receive(response(PapCode.AUTHENTICATE_ACK, first.identifier), 0.5)
        assert not client.succeeded


# ----------------------------------------------------------------------------- server


class TestServer:
    def test_start_listens_with_bounded_wait(self) -> None:
        server = listening_server(now=10.0)
        assert server.state == PapState.LISTEN
        assert server.next_deadline() == 40.0

    def test_listen_right_secret_acked_with_same_id(self) -> None:
        server = listening_server()
        server.receive(auth_request(0x17), 1.0)
        [ack] = server.drain_packets()
        assert ack.code == PapCode.AUTHENTICATE_ACK and ack.identifier == 0x17
        assert server.succeeded
        assert server.peer_id == "alice"
        assert server.next_deadline() is None

    def test_listen_second_secret_accepted(self) -> None:
        server = listening_server()
        server.receive(auth_request(1, b"bob", b"hunter2"), 1.0)
        assert server.succeeded and server.peer_id == "bob"

    @pytest.mark.parametrize(
        ("user", "password"),
        [(b"alice", b"wrong"), (b"mallory", b"s3cret"), (b"alice", b"hunter2"), (b"alice", b"s3cret\x00")],
        ids=["wrong-password", "unknown-user", "other-users-password", "password-with-suffix"],
    )
    def test_listen_wrong_secret_naked_and_fails(self, user: bytes, password: bytes) -> None:
        server = listening_server()
        server.receive(auth_request(0x18, user, password), 1.0)
        [nak] = server.drain_packets()
        assert nak.code == PapCode.AUTHENTICATE_NAK and nak.identifier == 0x18
        assert server.failed
        assert server.next_deadline() is None

    def test_listen_fails_only_after_max_failures(self) -> None:
        server = listening_server(PapConfig(secrets=ALICE.secrets, max_failures=3))
        for n in range(2):
            server.receive(auth_request(n, password=b"wrong"), float(n))
            assert server.state == PapState.LISTEN
        server.receive(auth_request(2, password=b"wrong"), 2.0)
        assert server.failed
        assert [p.code for p in server.drain_packets()] == [PapCode.AUTHENTICATE_NAK] * 3

    def test_listen_right_secret_after_a_failure_within_max_failures_succeeds(self) -> None:
        server = listening_server(PapConfig(secrets=ALICE.secrets, max_failures=2))
        server.receive(auth_request(1, password=b"wrong"), 1.0)
        server.receive(auth_request(2), 2.0)
        assert server.succeeded

    def test_open_retransmitted_request_acked_again(self) -> None:
        # RFC 1334 §2.2.1: our Ack may have been lost; the peer repeats its request
        server = listening_server()
        server.receive(auth_request(1), 1.0)
        server.drain_packets()
        server.receive(auth_request(2), 4.0)
        [ack] = server.drain_packets()
        assert ack.code == PapCode.AUTHENTICATE_ACK and ack.identifier == 2
        assert server.succeeded

    def test_bad_auth_further_requests_naked(self) -> None:
        server = listening_server()
        server.receive(auth_request(1, password=b"wrong"), 1.0)
        server.drain_packets()
        server.receive(auth_request(2), 2.0)
        [nak] = server.drain_packets()
        assert nak.code == PapCode.AUTHENTICATE_NAK
        assert server.failed

    def test_listen_wait_timeout_fails_exactly_at_deadline(self) -> None:
        server = listening_server(PapConfig(secrets=ALICE.secrets, wait_timeout=30.0), now=5.0)
        server.on_timer(34.999)
        assert server.state == PapState.LISTEN
        server.on_timer(35.0)
        assert server.failed
        assert server.drain_packets() == []

    def test_zero_wait_timeout_waits_forever(self) -> None:
        server = listening_server(PapConfig(secrets=ALICE.secrets, wait_timeout=0.0))
        assert server.next_deadline() is None
        server.on_timer(1e9)
        assert server.state == PapState.LISTEN

    def test_initial_request_dropped(self) -> None:
        server = PapServer(ALICE)
        server.receive(auth_request(1), 1.0)
        assert server.drops[DropReason.NOT_ALLOWED_IN_STATE] == 1
        assert server.drain_packets() == []

    @pytest.mark.parametrize("code", [PapCode.AUTHENTICATE_ACK, PapCode.AUTHENTICATE_NAK, 9])
    def test_listen_non_request_code_counted(self, code: int) -> None:
        server = listening_server()
        server.receive(response(code, 1), 1.0)
        assert server.drops[DropReason.BAD_CODE] == 1
        assert server.state == PapState.LISTEN

    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            (CpPacket(1, 1, b"\x05ali").emit(), DropReason.BAD_LENGTH),
            (b"\x01\x01\x00", DropReason.TRUNCATED),
            (b"\x01\x01\x00\x20\x00\x00", DropReason.BAD_LENGTH),
        ],
        ids=["peer-id-cut", "short-header", "length-overrun"],
    )
    def test_listen_malformed_request_counted(self, data: bytes, reason: DropReason) -> None:
        server = listening_server()
        server.receive(data, 1.0)
        assert server.drops[reason] == 1
        assert server.state == PapState.LISTEN
        assert server.drain_packets() == []

    def test_stop_forgets_everything(self) -> None:
        server = listening_server()
        server.stop()
        assert server.state == PapState.INITIAL
        assert server.next_deadline() is None
