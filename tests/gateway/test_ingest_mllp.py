"""`pulsebridge serve --mllp`: the real server process against python-hl7's MLLP client and `pulsebridge send`."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hl7
import hl7.client
import pytest
import requests
from click.testing import CliRunner

from gateway.cli import main
from tests.gateway.ingest_messages import GARBAGE, UNMAPPABLE_BIRTH_DATE, adt
from tests.gateway.served_gateway import ServedGateway


class Server(ServedGateway):
    """`python -m gateway serve` with HTTP and MLLP on free ports, on SQLite."""

    def send(self, message: bytes) -> hl7.Message:
        with hl7.client.MLLPClient("127.0.0.1", self.mllp) as client:
            return hl7.parse(client.send_message(message.decode()).decode())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("mllp"))
    yield running
    running.stop()


def _msa(ack: hl7.Message) -> tuple[str, str]:
    msa = ack.segment("MSA")
    return str(msa[1]), str(msa[2])


def test_python_hl7_client_gets_aa_ae_ar_echoing_the_control_id(server: Server) -> None:
    assert _msa(server.send(adt("M1", mrn="m1"))) == ("AA", "M1")
    assert _msa(server.send(adt("M2", mrn="m2", birth=UNMAPPABLE_BIRTH_DATE))) == ("AE", "M2")
    malformed = b"MSH|^~\\&|HIS|H1|PB|HOSP|20260101||ADT^A08|M3|P|2.5\rpid|not a segment id\r"
    assert _msa(server.send(malformed)) == ("AR", "M3")
    with hl7.client.MLLPClient("127.0.0.1", server.mllp) as client:
        ack = hl7.parse(client.send_message(GARBAGE.decode()).decode())
    assert str(ack.segment("MSA")[1]) == "AR"  # no MSH at all: nothing to echo


def test_resend_over_mllp_is_recognised_and_the_record_is_served(server: Server) -> None:
    assert _msa(server.send(adt("M4", mrn="m4", family="MLLP"))) == ("AA", "M4")
    found = requests.get(f"http://127.0.0.1:{server.http}/fhir/Patient", params={"family": "MLLP"}, timeout=10).json()
    [entry] = found["entry"]
    version = entry["resource"]["meta"]["versionId"]
    assert _msa(server.send(adt("M4", mrn="m4", family="MLLP"))) == ("AA", "M4")
    again = requests.get(f"http://127.0.0.1:{server.http}/fhir/Patient/{entry['resource']['id']}", timeout=10).json()
    assert again["meta"]["versionId"] == version


def test_fifty_concurrent_connections_each_get_their_acks(server: Server) -> None:
    def one(n: int) -> list[tuple[str, str]]:
        with hl7.client.MLLPClient("127.0.0.1", server.mllp) as client:
            return [_msa(hl7.parse(client.send_message(adt(f"P{n}-{k}", mrn=f"p{n}").decode()).decode())) for k in range(2)]

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50)))
    assert results == [[("AA", f"P{n}-0"), ("AA", f"P{n}-1")] for n in range(50)]


def test_a_broken_frame_does_not_stop_the_listener(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.mllp)) as sock:
        sock.sendall(b"\x0bMSH|^~\\&|half a frame")  # the client hangs up mid-message
    assert _msa(server.send(adt("M5", mrn="m5"))) == ("AA", "M5")


def test_pulsebridge_send_prints_each_ack(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "two.hl7"
    path.write_bytes(adt("S1", mrn="s1") + b"\r\n" + adt("S2", mrn="s2", birth=UNMAPPABLE_BIRTH_DATE))
    result = CliRunner().invoke(main, ["send", str(path), "--to", f"127.0.0.1:{server.mllp}"])
    assert result.exit_code == 1  # one message was not accepted
    assert "S1 AA" in result.output and "S2 AE" in result.output


def test_http_post_hl7_v2_statuses(server: Server) -> None:
    url = f"http://127.0.0.1:{server.http}/hl7/v2"
    assert requests.post(url, data=adt("H1", mrn="h1"), timeout=10).status_code == 200
    assert requests.post(url, data=adt("H2", mrn="h2", birth=UNMAPPABLE_BIRTH_DATE), timeout=10).status_code == 422
    rejected = requests.post(url, data=GARBAGE, timeout=10)
    assert rejected.status_code == 400 and b"MSA|AR" in rejected.content
