"""`pulsebridge send`: MLLP client against a real socket responder (DESIGN.md external contract)."""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.hl7v2 import parse
from adapters.hl7v2.ack import ack_bytes
from adapters.hl7v2.errors import ApplicationError
from adapters.hl7v2.mllp import read_frame, send_frame
from adapters.storage.query import parse_search
from gateway.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "gateway" / "samples" / "adt-a01-zh.hl7"


def _message(control_id: str) -> bytes:
    return (
        f"MSH|^~\\&|LIS|LAB|PB|HOSP|20261123083015+0800||ADT^A08^ADT_A01|{control_id}|P|2.5\r"
        "PID|1||123^^^HOSP^MR||DOE^JANE\r"
    ).encode()


class Responder:
    """An MLLP peer in a thread: answers each frame with the ACK `decide` chooses."""

    def __init__(self, decide: Callable[[bytes, int], bytes | None]) -> None:
        self.decide = decide
        self.received: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                while (payload := read_frame(conn)) is not None:
                    self.received.append(payload)
                    answer = self.decide(payload, len(self.received))
                    if answer is None:  # hang up without acknowledging
                        break
                    send_frame(conn, answer)

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def responder() -> Iterator[Callable[[Callable[[bytes, int], bytes | None]], Responder]]:
    made: list[Responder] = []

    def make(decide: Callable[[bytes, int], bytes | None]) -> Responder:
        made.append(Responder(decide))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _accept(payload: bytes, n: int) -> bytes:
    return ack_bytes(parse(payload))


def test_send_prints_each_ack_and_exits_zero(tmp_path: Path, responder) -> None:
    peer = responder(_accept)
    file = tmp_path / "two.hl7"
    file.write_bytes(_message("C1") + b"\n" + _message("C2"))
    result = CliRunner().invoke(main, ["send", str(file), "--to", f"127.0.0.1:{peer.port}"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines == [f"{file}: message 1: C1 AA", f"{file}: message 2: C2 AA"]
    assert [parse(p).control_id for p in peer.received] == ["C1", "C2"]


def test_send_reports_errors_and_exits_one(tmp_path: Path, responder) -> None:
    def refuse(payload: bytes, n: int) -> bytes:
        return ack_bytes(parse(payload), error=ApplicationError("unknown ward"))

    peer = responder(refuse)
    file = tmp_path / "one.hl7"
    file.write_bytes(_message("E1"))
    result = CliRunner().invoke(main, ["send", str(file), "--to", f"127.0.0.1:{peer.port}", "-v"])
    assert result.exit_code == 1
    assert f"{file}: message 1: E1 AE" in result.output
    assert "unknown ward" in result.output
    assert "MSA|AE|E1" in result.output


def test_send_resends_after_the_receiver_hangs_up(tmp_path: Path, responder) -> None:
    peer = responder(lambda payload, n: None if n == 1 else _accept(payload, n))
    file = tmp_path / "one.hl7"
    file.write_bytes(_message("R1"))
    result = CliRunner().invoke(main, ["send", str(file), "--to", f"127.0.0.1:{peer.port}", "--retries", "2"])
    assert result.exit_code == 0, result.output
    assert [parse(p).control_id for p in peer.received] == ["R1", "R1"]


def test_send_keeps_the_message_charset(responder) -> None:
    peer = responder(_accept)
    result = CliRunner().invoke(main, ["send", str(SAMPLE), "--to", f"127.0.0.1:{peer.port}"])
    assert result.exit_code == 0, result.output
    assert peer.received[0] == SAMPLE.read_bytes().rstrip(b"\r") + b"\r"


def test_send_without_a_receiver_names_the_message(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    file = tmp_path / "one.hl7"
    file.write_bytes(_message("X1"))
    result = CliRunner().invoke(main, ["send", str(file), "--to", f"127.0.0.1:{port}", "--retries", "0"])
    assert result.exit_code == 1
    assert "message 1" in result.output and "no acknowledgment" in result.output


def test_send_usage_error_exits_two() -> None:
    result = CliRunner().invoke(main, ["send", "x.hl7", "--to", "nohostport"])
    assert result.exit_code == 2


def _enhanced(control_id: str, accept: str, application: str = "NE") -> bytes:
    """A message in enhanced acknowledgment mode: MSH-15 `accept`, MSH-16 `application` (table 0155)."""
    return (
        f"MSH|^~\\&|LIS|LAB|PB|HOSP|20261123083015+0800||ADT^A08^ADT_A01|{control_id}|P|2.5|||{accept}|{application}\r"
        "PID|1||123^^^HOSP^MR||DOE^JANE\r"
    ).encode()


def test_send_does_not_wait_for_an_ack_the_message_asks_not_to_get(tmp_path: Path) -> None:
    """v2.5 2.9.3: MSH-15 NE means no accept ACK; the real listener sends none, and `send` must not
    wait for one (it used to time out and resend the message until its retries ran out)."""
    from adapters.storage.memory import MemoryRepository
    from gateway.ingest import Ingestor
    from mllp_listener import running_listener

    repository = MemoryRepository()
    file = tmp_path / "two.hl7"
    file.write_bytes(_enhanced("N1", "NE") + b"\n" + _message("O2"))
    with running_listener(Ingestor(repository)) as listener:
        result = CliRunner().invoke(main, ["send", str(file), "--to", f"127.0.0.1:{listener.port}", "--timeout", "5"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{file}: message 1: N1 sent; MSH-15 NE asks for no acknowledgment when accepted",
        f"{file}: message 2: O2 AA",
    ]
    assert len(repository.search(parse_search("Patient", [])).matches) == 1


def test_send_reports_a_late_error_ack_of_a_message_sent_without_waiting(tmp_path: Path, responder) -> None:
    """MSH-15 ER: an accept ACK comes only on error, so `send` goes on; the CE that then arrives is
    reported for its own message, and the next message still gets its own ACK."""
    def answer(payload: bytes, n: int) -> bytes:
        message = parse(payload)
        return ack_bytes(message, error=ApplicationError("ward closed")) if n == 1 else ack_bytes(message)

    peer = responder(answer)
    file = tmp_path / "two.hl7"
    file.write_bytes(_enhanced("E1", "ER") + b"\n" + _message("O2"))
    result = CliRunner().invoke(main, ["send", str(file), "--to", f"127.0.0.1:{peer.port}"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{file}: message 1: E1 sent; MSH-15 ER asks for no acknowledgment when accepted"
    assert lines[1].startswith(f"{file}: message 1 (late): E1 CE")
    assert lines[2] == f"{file}: message 2: O2 AA"
