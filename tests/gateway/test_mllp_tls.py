"""MLLP over TLS (gateway.mllp_server, adapters.hl7v2.mllp_client, `pulsebridge send --tls`): issue 7, part 3.

Certificates are made per test session with `cryptography`; clients are python-hl7's MLLP client
on a TLS-wrapped socket, our MLLPClient and `pulsebridge send`.
"""
from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import hl7
import hl7.client
import pytest
from click.testing import CliRunner

from adapters.hl7v2.mllp import read_frame, send_frame
from adapters.hl7v2.mllp_client import MLLPClient, client_tls_context
from adapters.storage import open_repository
from gateway.cli import main
from gateway.ingest import Ingestor
from gateway.mllp_server import ListenerOptions, server_tls_context
from gateway.settings import Settings
from tests.gateway.ingest_messages import adt
from tests.gateway.mllp_listener import running_listener
from tests.gateway.served_gateway import ServedGateway
from tests.gateway.tls_certs import Authority, Issued


class Pki:
    """The session's CA, the listener's certificate, a client certificate, and one from a CA nobody trusts."""

    def __init__(self, directory: Path) -> None:
        self.ca = Authority(directory)
        self.server = self.ca.issue("server", "pulsebridge.test", server=True)
        self.client = self.ca.issue("client", "his.hospital.test", server=False)
        self.rogue = Authority(directory, "Rogue CA").issue("rogue-client", "his.hospital.test", server=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def ingestor(tmp_path: Path) -> Iterator[Ingestor]:
    repository = open_repository(f"sqlite:///{tmp_path / 'tls.db'}")
    yield Ingestor(repository, Settings())
    repository.close()


def _client(pki: Pki, certificate: Issued | None = None) -> ssl.SSLContext:
    return client_tls_context(pki.ca.ca_file, certificate.cert if certificate else None, certificate.key if certificate else None)


def _msa(ack: bytes) -> tuple[str, str]:
    msa = hl7.parse(ack.decode()).segment("MSA")
    return str(msa[1]), str(msa[2])


def _plain_exchange(port: int, payload: bytes) -> bytes | None:
    """Send one MLLP frame over plain TCP; the answer, or None when the listener closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            send_frame(sock, payload)
            return read_frame(sock)
        except ConnectionError:
            return None


def _tls_exchange(port: int, context: ssl.SSLContext, payload: bytes) -> bytes | None:
    """One frame over TLS with a fresh connection; None when the handshake or the exchange is refused."""
    try:
        with MLLPClient("127.0.0.1", port, tls=context, retries=0, timeout=10) as client:
            return client.send(payload)
    except (ConnectionError, ssl.SSLError):
        return None


def test_python_hl7_client_over_tls_gets_its_ack(pki: Pki, ingestor: Ingestor) -> None:
    with running_listener(ingestor, tls=server_tls_context(pki.server.cert, pki.server.key)) as server:
        client = hl7.client.MLLPClient("127.0.0.1", server.port)
        client.socket = _client(pki).wrap_socket(client.socket, server_hostname="127.0.0.1")
        with client:
            ack = client.send_message(adt("T1", mrn="t1").decode())
            assert client.socket.version() in ("TLSv1.2", "TLSv1.3")
        assert _msa(ack) == ("AA", "T1")


def test_plain_tcp_to_the_tls_port_is_closed_unread_and_the_listener_carries_on(
    pki: Pki, ingestor: Ingestor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.mllp_server")
    with running_listener(ingestor, tls=server_tls_context(pki.server.cert, pki.server.key)) as server:
        assert _plain_exchange(server.port, adt("P1", mrn="p1", family="PLAINTEXT")) is None
        assert ingestor.log.by_status(("received", "applied", "rejected"), limit=10) == []  # nothing was read as HL7
        assert _msa(_tls_exchange(server.port, _client(pki), adt("P2", mrn="p2")) or b"") == ("AA", "P2")
    [refusal] = [r.getMessage() for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert refusal.startswith("MLLP connection from 127.0.0.1:") and "PLAINTEXT" not in refusal


def test_a_client_certificate_is_required_and_verified_when_a_client_ca_is_set(pki: Pki, ingestor: Ingestor) -> None:
    context = server_tls_context(pki.server.cert, pki.server.key, pki.ca.ca_file)
    with running_listener(ingestor, tls=context) as server:
        assert _tls_exchange(server.port, _client(pki), adt("C1", mrn="c1")) is None  # no certificate
        assert _tls_exchange(server.port, _client(pki, pki.rogue), adt("C2", mrn="c2")) is None  # untrusted issuer
        assert _plain_exchange(server.port, adt("C3", mrn="c3")) is None
        ack = _tls_exchange(server.port, _client(pki, pki.client), adt("C4", mrn="c4"))
        assert ack is not None and _msa(ack) == ("AA", "C4")
    applied = ingestor.log.by_status(("applied",), limit=10)
    assert [row.control_id for row in applied] == ["C4"]


def test_a_client_does_not_trust_a_listener_outside_its_ca(pki: Pki, ingestor: Ingestor, tmp_path: Path) -> None:
    stranger = Authority(tmp_path, "Other CA")
    with running_listener(ingestor, tls=server_tls_context(pki.server.cert, pki.server.key)) as server:
        with pytest.raises(ConnectionError, match="TLS certificate not trusted"):
            MLLPClient("127.0.0.1", server.port, tls=client_tls_context(stranger.ca_file), retries=2, backoff=0).send(adt("X1"))
    assert ingestor.log.by_status(("applied",), limit=10) == []


def test_pulsebridge_send_tls_options(pki: Pki, ingestor: Ingestor, tmp_path: Path) -> None:
    message = tmp_path / "one.hl7"
    message.write_bytes(adt("S1", mrn="s1"))
    runner = CliRunner()
    context = server_tls_context(pki.server.cert, pki.server.key, pki.ca.ca_file)
    with running_listener(ingestor, tls=context) as server:
        target = f"127.0.0.1:{server.port}"
        sent = runner.invoke(main, ["send", str(message), "--to", target, "--ca", pki.ca.ca_file,
                                    "--cert", pki.client.cert, "--key", pki.client.key])
        assert sent.exit_code == 0, sent.output
        assert sent.stdout.strip().endswith("S1 AA")
        untrusted = runner.invoke(main, ["send", str(message), "--to", target, "--tls", "--retries", "0"])
        assert untrusted.exit_code == 1 and "TLS certificate not trusted" in untrusted.stderr
    usage = runner.invoke(main, ["send", str(message), "--to", target, "--key", pki.client.key])
    assert usage.exit_code == 2 and "--key needs --cert" in usage.stderr
    bad = runner.invoke(main, ["send", str(message), "--to", target, "--cert", pki.client.cert, "--key", pki.server.key])
    assert bad.exit_code == 2 and "TLS set-up failed" in bad.stderr


def test_listener_options_refuse_half_a_tls_configuration(pki: Pki) -> None:
    with pytest.raises(ValueError, match="both a certificate and its private key"):
        ListenerOptions(tls_cert=pki.server.cert).check("127.0.0.1")
    with pytest.raises(ValueError, match="client CA needs"):
        ListenerOptions(tls_client_ca=pki.ca.ca_file).check("127.0.0.1")
    with pytest.raises(ssl.SSLError):
        ListenerOptions(tls_cert=pki.server.cert, tls_key=pki.client.key).check("127.0.0.1")


@pytest.mark.e2e
def test_serve_speaks_mllp_over_tls_with_client_certificates(pki: Pki, tmp_path: Path) -> None:
    gateway = ServedGateway(tmp_path, "--mllp-tls-cert", pki.server.cert, "--mllp-tls-key", pki.server.key,
                            "--mllp-tls-client-ca", pki.ca.ca_file)
    try:
        message = tmp_path / "e2e.hl7"
        message.write_bytes(adt("E1", mrn="e1"))
        sent = CliRunner().invoke(main, ["send", str(message), "--to", f"127.0.0.1:{gateway.mllp}", "--ca", pki.ca.ca_file,
                                         "--cert", pki.client.cert, "--key", pki.client.key])
        assert sent.exit_code == 0, sent.output
        assert _plain_exchange(gateway.mllp, adt("E2", mrn="e2")) is None
        assert _tls_exchange(gateway.mllp, _client(pki), adt("E3", mrn="e3")) is None
        assert _msa(_tls_exchange(gateway.mllp, _client(pki, pki.client), adt("E4", mrn="e4")) or b"") == ("AA", "E4")
        assert gateway.alive()
    finally:
        output = gateway.stop()
    assert "MLLP over TLS listening on 127.0.0.1" in output
    assert "Traceback" not in output
