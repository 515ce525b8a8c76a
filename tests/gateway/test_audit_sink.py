"""The audit sink process under `pulsebridge serve`: every event the workers put is stored, whatever stops the server."""
from __future__ import annotations

import http.client
import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from adapters.storage import open_repository
from adapters.storage.query import parse_search
from adapters.storage.memory import MemoryRepository
from conformance.audit import Requester
from gateway.audit_sink import AuditSink, SocketWriter, sweep_stale_directories
from gateway.audit_trail import Capture
from tests.gateway.served_gateway import ServedGateway


def _capture(n: int) -> Capture:
    """What a worker's request thread hands over for `GET Patient/p{n}` by user-{n}."""
    return Capture("fhir", "fhir.read", "GET", {"resource_type": "Patient", "resource_id": f"p{n}"}, (), 200,
                   {"resourceType": "Patient", "id": f"p{n}"}, datetime.now(timezone.utc),
                   Requester(f"user-{n}", "bench-app", "127.0.0.1", None, None))


def _produce(address: str, first: int, count: int) -> None:
    writer = SocketWriter(MemoryRepository(), address)
    for n in range(first, first + count):
        writer.submit(_capture(n))
    writer.flush()


def _count(db: str, *pairs: tuple[str, str]) -> int:
    """How many stored AuditEvents match (`total` of the search)."""
    repository = open_repository(db)
    try:
        total = repository.search(parse_search("AuditEvent", [*pairs, ("_count", "1")])).total
    finally:
        repository.close()
    assert total is not None
    return total


def test_the_sink_stores_every_event_of_several_workers(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'sink.db'}"
    open_repository(db).close()
    sink = AuditSink(db, interval=0.2)
    sink.start()
    try:
        with socket.socket(socket.AF_UNIX) as dying:  # a worker killed halfway through sending an event
            dying.connect(sink.address)
            dying.sendall(b"\x00\x00\x10\x00{\"resourceType\"")
        producers = [multiprocessing.get_context("fork").Process(target=_produce, args=(sink.address, 1000 * k, 400))
                     for k in range(3)]
        for producer in producers:
            producer.start()
        for producer in producers:
            producer.join(60)
            assert producer.exitcode == 0
    finally:
        sink.stop()
    assert sink.process is not None and sink.process.returncode == 0
    assert not os.path.exists(sink.address)
    assert _count(db, ("subtype", "read")) == 1200
    assert all(_count(db, ("altid", f"user-{n}"), ("patient", f"Patient/p{n}")) == 1 for n in (0, 399, 1000, 1399, 2000, 2399))


def test_a_sink_that_keeps_dying_young_is_restarted_ever_more_slowly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sink = AuditSink(f"sqlite:///{tmp_path / 'no-such-directory' / 'sink.db'}", interval=0.2)  # it cannot open the store
    with caplog.at_level(logging.ERROR, logger="gateway.audit_sink"):
        sink.start()
        deadline = time.monotonic() + 30
        while sum("audit sink exited" in r.getMessage() for r in caplog.records) < 3:
            assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
            time.sleep(0.1)
        started = time.monotonic()
        sink.stop(timeout=10)
    assert time.monotonic() - started < 10  # stop() ends a wait for the next start at once
    waits = [r.getMessage().rsplit(" in ", 1)[-1] for r in caplog.records if "audit sink exited" in r.getMessage()]
    assert waits[:3] == ["1 s", "2 s", "4 s"]


def test_a_worker_whose_sink_is_gone_stores_the_event_itself(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    repository = MemoryRepository()
    writer = SocketWriter(repository, str(tmp_path / "no-such.sock"))
    with caplog.at_level(logging.WARNING, logger="gateway.audit_sink"):
        writer.submit(_capture(7))
    assert [record.getMessage() for record in caplog.records] == [
        "audit sink unreachable (FileNotFoundError): GET fhir.read stored by the worker"]
    [stored] = repository.search(parse_search("AuditEvent", [("altid", "user-7")])).matches
    assert stored["entity"][0]["what"] == {"reference": "Patient/p7"}


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "service-stop"])
def test_a_served_trail_survives_a_stop_sent_to_the_whole_process_group(tmp_path: Path, stop_signal: int) -> None:
    """Ctrl-C or a service manager signals the master, the workers and the sink at once: the sink must outlive the workers."""
    server = ServedGateway(tmp_path, "--workers", "2")
    try:
        sink = subprocess.run(["pgrep", "-f", "-g", str(server.process.pid), "gateway.audit_sink"], capture_output=True, text=True)
        assert sink.stdout.split(), "no audit sink process beside the workers"
        connections = [http.client.HTTPConnection("127.0.0.1", server.http, timeout=10) for _ in range(4)]
        for n in range(120):
            connection = connections[n % 4]
            connection.request("GET", f"/fhir/Patient/nobody-{n}")
            assert connection.getresponse().read()
        for connection in connections:
            connection.close()
    finally:
        os.killpg(server.process.pid, stop_signal)
        server.process.wait(timeout=90)
    assert _count(server.db, ("subtype", "read"), ("outcome", "4")) == 120


def _sink_pids(server: ServedGateway) -> list[str]:
    found = subprocess.run(["pgrep", "-f", "-g", str(server.process.pid), "gateway.audit_sink"], capture_output=True, text=True)
    return found.stdout.split()


def test_requests_are_still_audited_when_the_sink_process_dies_and_a_new_sink_takes_over(tmp_path: Path) -> None:
    server = ServedGateway(tmp_path)
    try:
        [sink_pid] = _sink_pids(server)
        connection = http.client.HTTPConnection("127.0.0.1", server.http, timeout=10)

        def read(name: str) -> None:
            connection.request("GET", f"/fhir/Patient/{name}")
            assert connection.getresponse().read()

        for n in range(3):
            read(f"before-{n}")
        deadline = time.monotonic() + 30
        while _count(server.db, ("subtype", "read")) < 3:  # stored by the sink, which then dies
            assert time.monotonic() < deadline, "the sink stored nothing"
            time.sleep(0.1)
        os.kill(int(sink_pid), signal.SIGKILL)
        _wait_until_gone(int(sink_pid))  # an event sent while it dies is lost with it, as with any crash
        for n in range(5):
            read(f"after-{n}")  # stored by the worker while there is no sink, else by the new one
        deadline = time.monotonic() + 30
        while not [pid for pid in _sink_pids(server) if pid != sink_pid]:
            assert time.monotonic() < deadline, "no new sink was started"
            time.sleep(0.1)
        for n in range(5):
            read(f"restarted-{n}")
        connection.close()
    finally:
        output = server.stop()
    names = [f"before-{n}" for n in range(3)] + [f"{when}-{n}" for when in ("after", "restarted") for n in range(5)]
    missing = [name for name in names if _count(server.db, ("entity", f"Patient/{name}")) != 1]
    assert missing == [], output
    assert "audit sink exited" in output and "after-" not in output and "restarted-" not in output
    assert output.count("stored by the worker") <= 5  # only while no sink ran: the new one took the rest


def _wait_until_gone(pid: int) -> None:
    """Until the process is reaped (the gunicorn master reaps its children): by then its sockets are closed."""
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"process {pid} was not reaped"
        time.sleep(0.02)


def test_a_crashed_master_leaves_no_sink_behind(tmp_path: Path) -> None:
    """SIGKILL to the master: its workers leave, so the sink stores what it holds, ends and removes its socket's directory."""
    server = ServedGateway(tmp_path)
    try:
        sink = subprocess.run(["pgrep", "-f", "-g", str(server.process.pid), "gateway.audit_sink"], capture_output=True, text=True)
        [sink_pid] = sink.stdout.split()
        directory = Path(f"/proc/{sink_pid}/cmdline").read_bytes().split(b"\0")[-2].decode()
        assert Path(directory, "sink.sock").exists()
        connection = http.client.HTTPConnection("127.0.0.1", server.http, timeout=10)
        connection.request("GET", "/fhir/Patient/last")
        assert connection.getresponse().read()
        connection.close()
        os.kill(server.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while _running(int(sink_pid)):
            assert time.monotonic() < deadline, "the sink outlived its master"
            time.sleep(0.05)
    finally:
        server.stop()
    assert not Path(directory).exists()
    assert _count(server.db, ("entity", "Patient/last")) == 1


def _running(pid: int) -> bool:
    """Neither reaped nor a zombie (an orphan's zombie waits for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_the_next_server_removes_the_socket_directories_of_servers_that_are_gone(tmp_path: Path) -> None:
    """A SIGKILL to a whole process group leaves nobody to clean up; the next sink sweeps what is left."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"pulsebridge-audit-{gone.stdout.strip()}-x1"
    live = tmp_path / f"pulsebridge-audit-{os.getpid()}-x2"
    other = tmp_path / "pulsebridge-audit-notapid"
    for directory in (stale, live, other):
        directory.mkdir()
        (directory / "sink.sock").touch()
    assert sweep_stale_directories(str(tmp_path)) == [str(stale)]
    assert not stale.exists() and live.exists() and other.exists()
