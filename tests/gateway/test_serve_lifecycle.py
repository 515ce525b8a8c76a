"""`pulsebridge serve` as a real process: idle timeout, oversize frames, MSH-15 accept-ACK conditions,
--watch, --demo, graceful SIGTERM and a SIGKILL crash with resend (issue 5, "Proof")."""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import hl7
import hl7.client
import pytest
import requests

from adapters.hl7v2.mllp import read_frame, send_frame
from adapters.hl7v2.mllp_client import MLLPClient
from tests.gateway.ingest_messages import adt
from tests.gateway.served_gateway import ServedGateway

pytestmark = pytest.mark.e2e

MAX_BYTES = 4096  # PULSEBRIDGE_MAX_MESSAGE_BYTES for these servers: small, so an oversize frame is cheap


class Server(ServedGateway):
    """`python -m gateway serve` in its own process group, on SQLite, with a small message limit and a 1 s idle timeout."""

    def __init__(self, tmp: Path, *extra: str) -> None:
        self.path = tmp / "served.db"
        env = {"PULSEBRIDGE_MAX_MESSAGE_BYTES": str(MAX_BYTES), "PULSEBRIDGE_MLLP_IDLE_TIMEOUT": "1"}
        super().__init__(tmp, *extra, env=env, db=f"sqlite:///{self.path}")

    @property
    def stderr(self) -> list[str]:
        return self.lines

    def fhir(self, path: str, **params: str) -> dict:
        return requests.get(f"http://127.0.0.1:{self.http}/fhir/{path}", params=params, timeout=10).json()

    def all_resources(self, resource_type: str) -> list[dict]:
        found, page = [], self.fhir(resource_type, _count="100")
        while True:
            found += [entry["resource"] for entry in page.get("entry", [])]
            following = [link["url"] for link in page.get("link", []) if link["relation"] == "next"]
            if not following:
                return found
            page = requests.get(following[0], timeout=10).json()

    def signal(self, sig: int) -> None:
        os.killpg(self.process.pid, sig)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("lifecycle")
    (tmp / "drop").mkdir()
    running = Server(tmp, "--watch", str(tmp / "drop"), "--demo")
    yield running
    running.stop()


def _msa(ack: bytes) -> tuple[str, str]:
    msa = hl7.parse(ack.decode()).segment("MSA")
    return str(msa[1]), str(msa[2])


def test_demo_loads_a_real_record_before_serving(server: Server) -> None:
    [patient] = server.fhir("Patient", identifier="MRN100234")["entry"]
    assert patient["resource"]["name"][0]["family"] == "王"
    codes = {o["code"]["coding"][0]["code"] for o in server.all_resources("Observation")}
    assert {"1558-6", "8480-6", "8462-4"} <= codes  # fasting glucose, systolic and diastolic BP
    assert server.fhir("Appointment")["entry"][0]["resource"]["status"] == "booked"
    assert any(e["resource"]["status"] == "finished" for e in server.fhir("Encounter")["entry"])  # the A03 discharge
    assert any("4 sample message(s) loaded (4 new" in line for line in server.stderr)


def test_idle_timeout_closes_a_silent_connection(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.mllp), timeout=5) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""  # the server hung up on us
        assert 0.5 < time.monotonic() - started < 4


def test_oversize_frame_gets_ar_and_the_connection_carries_on(server: Server) -> None:
    big = adt("BIG1", mrn="big") + b"NTE|1||" + b"x" * (2 * MAX_BYTES) + b"\r"
    with socket.create_connection(("127.0.0.1", server.mllp), timeout=10) as sock:
        send_frame(sock, big)
        assert _msa(read_frame(sock)) == ("AR", "BIG1")
        send_frame(sock, adt("AFTER-BIG", mrn="big"))
        assert _msa(read_frame(sock)) == ("AA", "AFTER-BIG")


@pytest.mark.parametrize(("accept", "expected"), [("AL", "CA"), ("SU", "CA"), ("NE", None), ("ER", None)])
def test_enhanced_mode_accept_ack_follows_msh_15(server: Server, accept: str, expected: str | None) -> None:
    control_id = f"ENH-{accept}"
    message = adt(control_id, mrn=f"enh-{accept.lower()}", header_extra=f"|||{accept}|NE")
    with socket.create_connection(("127.0.0.1", server.mllp), timeout=10) as sock:
        send_frame(sock, message)
        if expected is None:  # nothing on the wire for this frame; the message is applied all the same
            sock.settimeout(0.5)
            with pytest.raises(TimeoutError):
                sock.recv(1)
        else:
            assert _msa(read_frame(sock)) == (expected, control_id)
    deadline = time.monotonic() + 5
    while not server.fhir("Patient", identifier=f"enh-{accept.lower()}").get("entry"):
        assert time.monotonic() < deadline, "message not applied"
        time.sleep(0.1)
    # over HTTP a request always gets a response: the accept ACK body even when MSH-15 says NE
    response = requests.post(f"http://127.0.0.1:{server.http}/hl7/v2", data=message, timeout=10)
    assert response.status_code == 200 and b"MSA|CA|" + control_id.encode() in response.content


def test_watched_folder_files_each_drop(server: Server) -> None:
    drop = Path(server.path.parent / "drop")
    batch = b"FHS|^~\\&\rBHS|^~\\&\r" + adt("W1", mrn="w1") + adt("W2", mrn="w2") + b"BTS|2\rFTS|1\r"
    (drop / ".batch.hl7.tmp").write_bytes(batch)
    os.rename(drop / ".batch.hl7.tmp", drop / "batch.hl7")  # the write-then-rename convention
    (drop / "bad.hl7").write_bytes(adt("W3", mrn="w3") + adt("W4", mrn="w4", birth="20231399"))
    deadline = time.monotonic() + 15
    while not ((drop / "processed" / "batch.hl7").exists() and (drop / "failed" / "bad.hl7").exists()):
        assert time.monotonic() < deadline, sorted(p.name for p in drop.rglob("*"))
        time.sleep(0.1)
    assert (drop / "processed" / "batch.hl7.reason.txt").read_text().splitlines()[2:] == ["1\tW1\tAA\t", "2\tW2\tAA\t"]
    lines = (drop / "failed" / "bad.hl7.reason.txt").read_text().splitlines()[2:]
    assert lines[0] == "1\tW3\tAA\t" and lines[1].startswith("2\tW4\tAE\t")
    assert server.fhir("Patient", identifier="w2")["entry"]


def test_sigterm_lets_the_in_flight_message_finish_and_be_acknowledged(tmp_path: Path) -> None:
    running = Server(tmp_path)
    try:
        lock = sqlite3.connect(running.path, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # the store is busy: the next message waits in flight
        sock = socket.create_connection(("127.0.0.1", running.mllp), timeout=20)
        send_frame(sock, adt("INFLIGHT", mrn="inflight"))
        time.sleep(0.5)
        running.signal(signal.SIGTERM)
        time.sleep(0.5)
        assert running.process.poll() is None  # still finishing
        lock.execute("ROLLBACK")
        lock.close()
        ack = read_frame(sock)
        assert _msa(ack) == ("AA", "INFLIGHT"), ack
        assert read_frame(sock) is None  # then the connection is closed
        sock.close()
        running.process.wait(timeout=20)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", running.mllp), timeout=1).close()
    finally:
        running.stop()
    with sqlite3.connect(running.path) as db:
        assert db.execute("SELECT status FROM message_log WHERE control_id = 'INFLIGHT'").fetchall() == [("applied",)]


def _visit(n: int) -> bytes:
    """ADT^A01 number n: 200 visits of 50 patients (MRN c<n % 50>, visit number CV<n>)."""
    return (
        f"MSH|^~\\&|HIS|H1|PB|HOSP|20260101120000+0800||ADT^A01^ADT_A01|C{n:04d}|P|2.5\r"
        f"EVN|A01|20260101120000+0800\r"
        f"PID|1||c{n % 50}^^^HOSP^MR||CRASH^PAT{n % 50}||19800101|F\r"
        f"PV1|1|I|W1^101^1||||||||||||||||CV{n}^^^HOSP^VN\r"
    ).encode()


def test_sigkill_mid_stream_then_resend_stores_every_acknowledged_message_once(tmp_path: Path) -> None:
    messages = [_visit(n) for n in range(200)]
    acknowledged: dict[int, str] = {}

    def stream(server: Server, todo: list[int], *, until_lost: bool) -> None:
        client = MLLPClient("127.0.0.1", server.mllp, timeout=10, retries=0 if until_lost else 3)
        try:
            for n in todo:
                code, control_id = _msa(client.send(messages[n]))
                assert control_id == f"C{n:04d}"
                acknowledged[n] = code
        except ConnectionError:
            if not until_lost:
                raise
            # the server died: whatever was not acknowledged is resent after the restart
        finally:
            client.close()

    first = Server(tmp_path)
    sender = threading.Thread(target=stream, args=(first, list(range(200))), kwargs={"until_lost": True})
    sender.start()
    while len(acknowledged) < 60:
        assert sender.is_alive(), "the stream ended before the kill"
        time.sleep(0.005)
    first.signal(signal.SIGKILL)
    sender.join(timeout=30)
    first.process.wait(timeout=10)
    before_crash = dict(acknowledged)
    assert 60 <= len(before_crash) < 200 and set(before_crash.values()) == {"AA"}

    second = Server(tmp_path)
    try:
        stream(second, [n for n in range(200) if acknowledged.get(n) != "AA"], until_lost=False)
        assert len(acknowledged) == 200 and set(acknowledged.values()) == {"AA"}
        patients = second.all_resources("Patient")
        encounters = second.all_resources("Encounter")
    finally:
        second.stop()

    mrns = Counter(i["value"] for p in patients for i in p["identifier"] if i.get("type", {}).get("coding", [{}])[0].get("code") == "MR")
    visits = Counter(i["value"] for e in encounters for i in e.get("identifier", []))
    assert mrns == Counter({f"c{k}": 1 for k in range(50)})
    assert visits == Counter({f"CV{n}": 1 for n in range(200)})
    with sqlite3.connect(first.path) as db:
        applied = Counter(cid for (cid,) in db.execute("SELECT control_id FROM message_log WHERE status = 'applied'"))
        other = {status for (status,) in db.execute("SELECT DISTINCT status FROM message_log WHERE status != 'applied'")}
    assert applied == Counter({f"C{n:04d}": 1 for n in range(200)})  # each message applied exactly once
    assert other <= {"duplicate"}  # resends of what was applied but not acknowledged before the kill
