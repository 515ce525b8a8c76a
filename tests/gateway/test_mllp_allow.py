"""The MLLP allow-list (gateway.allow_list, gateway.mllp_server): who may connect, and the secure default (issue 7, part 3)."""
from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.hl7v2.mllp import read_frame, send_frame
from adapters.storage import open_repository
from gateway.allow_list import AllowList, is_loopback_bind, parse_allow_list, require_for_bind
from gateway.cli import main
from gateway.ingest import Ingestor
from gateway.settings import Settings, SettingsError
from tests.gateway.ingest_messages import adt
from tests.gateway.mllp_listener import running_listener
from tests.gateway.served_gateway import ServedGateway


@pytest.fixture
def ingestor(tmp_path: Path) -> Iterator[Ingestor]:
    repository = open_repository(f"sqlite:///{tmp_path / 'allow.db'}")
    yield Ingestor(repository, Settings())
    repository.close()


def _exchange(host: str, port: int, payload: bytes) -> bytes | None:
    """One MLLP frame; the ACK, or None when the listener closed the connection instead."""
    with socket.create_connection((host, port), timeout=10) as sock:
        try:
            send_frame(sock, payload)
            return read_frame(sock)
        except ConnectionError:
            return None


@pytest.mark.parametrize(("peer", "expected"), [
    ("10.1.2.3", True), ("10.255.0.1", True), ("11.0.0.1", False), ("192.168.1.7", True), ("192.168.1.8", False),
    ("fd00::17", True), ("fe80::1%eth0", False), ("::ffff:10.9.9.9", True), ("::ffff:8.8.8.8", False),
    ("not-an-address", False), ("", False),
])
def test_addresses_and_networks_ipv4_and_ipv6(peer: str, expected: bool) -> None:
    allow = parse_allow_list("10.0.0.0/8, 192.168.1.7 fd00::/8")
    assert allow.permits(peer) is expected


def test_an_unset_list_admits_any_peer_and_bad_entries_are_named() -> None:
    assert AllowList().permits("203.0.113.9") and not AllowList()
    assert str(parse_allow_list("10.0.0.1/8,::1")) == "10.0.0.0/8,::1/128"
    with pytest.raises(ValueError, match="'10.0.0.0/33' is not an IP address or CIDR network"):
        parse_allow_list("10.0.0.0/33")
    with pytest.raises(SettingsError, match="PULSEBRIDGE_MLLP_ALLOW: 'his.hospital.example'"):
        Settings.from_env({"PULSEBRIDGE_MLLP_ALLOW": "his.hospital.example"})


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("", False), ("::", False), ("10.0.0.5", False), ("gateway.hospital.example", False),
])
def test_an_exposed_bind_needs_an_explicit_list(host: str, loopback: bool) -> None:
    assert is_loopback_bind(host) is loopback
    require_for_bind(host, parse_allow_list("0.0.0.0/0,::/0"), option="X")
    if loopback:
        require_for_bind(host, AllowList(), option="X")
    else:
        with pytest.raises(ValueError, match="reachable from other machines: set X"):
            require_for_bind(host, AllowList(), option="X")


def test_a_sender_outside_the_list_is_closed_unread_and_logged_by_address_only(
    ingestor: Ingestor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.mllp_server")
    with running_listener(ingestor, allow=parse_allow_list("10.0.0.0/8")) as server:
        assert _exchange("127.0.0.1", server.port, adt("R1", mrn="r1", family="SECRETNAME")) is None
    assert ingestor.log.by_status(("received", "applied", "rejected"), limit=10) == []
    [record] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert record.getMessage().startswith("MLLP connection from 127.0.0.1:") and "SECRETNAME" not in caplog.text


def test_a_sender_inside_the_list_is_served(ingestor: Ingestor) -> None:
    with running_listener(ingestor, allow=parse_allow_list("192.0.2.0/24,127.0.0.0/8")) as server:
        assert _exchange("127.0.0.1", server.port, adt("A1", mrn="a1")) is not None
    assert [row.control_id for row in ingestor.log.by_status(("applied",), limit=10)] == ["A1"]


def test_ipv6_loopback_sender_against_an_ipv4_only_list(ingestor: Ingestor) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with running_listener(ingestor, host="::1", allow=parse_allow_list("127.0.0.0/8")) as server:
        assert _exchange("::1", server.port, adt("V1", mrn="v1")) is None
    with running_listener(ingestor, host="::1", allow=parse_allow_list("::1")) as server:
        assert _exchange("::1", server.port, adt("V2", mrn="v2")) is not None


def test_serve_refuses_an_exposed_mllp_bind_without_a_list(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["serve", "--http", "127.0.0.1:1", "--db", f"sqlite:///{tmp_path / 'x.db'}"]
    exposed = runner.invoke(main, [*args, "--mllp", "0.0.0.0:2575"])
    assert exposed.exit_code == 2 and "set --mllp-allow / PULSEBRIDGE_MLLP_ALLOW" in exposed.stderr
    bad = runner.invoke(main, [*args, "--mllp", "0.0.0.0:2575"], env={"PULSEBRIDGE_MLLP_ALLOW": "10.0.0.0/99"})
    assert bad.exit_code == 2 and "'10.0.0.0/99' is not an IP address" in bad.stderr


@pytest.mark.e2e
def test_serve_mllp_allow_closes_other_senders(tmp_path: Path) -> None:
    gateway = ServedGateway(tmp_path, "--mllp-allow", "192.0.2.0/24", env={"PULSEBRIDGE_MLLP_IDLE_TIMEOUT": "5"})
    try:
        assert _exchange("127.0.0.1", gateway.mllp, adt("G1", mrn="g1", family="SECRETNAME")) is None
        assert gateway.alive()
    finally:
        output = gateway.stop()
    assert "MLLP connection from 127.0.0.1:" in output and "refused: address not in the MLLP allow-list" in output
    assert "SECRETNAME" not in output and "Traceback" not in output
