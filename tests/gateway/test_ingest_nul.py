"""NUL in an inbound HL7 v2 message (ER7 has none; PostgreSQL text cannot hold U+0000): refused at the edge with AR + ERR
(table 0357 code 100, with the byte offset), kept once as a dead letter with its raw bytes, on SQLite and PostgreSQL,
over MLLP and HTTP, and the listener carries on. The message log itself never fails on such text (defence in depth)."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from adapters.hl7v2 import parse
from adapters.hl7v2.ack import ack_for_unparseable
from adapters.hl7v2.errors import ParseError
from adapters.hl7v2.mllp import FRAME_END, frame
from adapters.storage import open_repository
from adapters.storage.base import Repository
from adapters.storage.messagelog import REJECTED, LoggedMessage, open_message_log, utc_now
from tests.gateway.pg_schema import PG_URL, own_schema, schema_url, sql_store
from tests.gateway.served_gateway import ServedGateway

NUL = b"\x00"
WHERE = {
    "MSH-10": lambda n: _message(f"NUL{n}\x00X", "NULMRN"),
    "PID-5": lambda n: _message(f"NUL{n}", "NULMRN", family="ZHUANG\x00ZHOU"),
}


def _message(control_id: str, mrn: str, *, family: str = "DOE") -> bytes:
    return (
        f"MSH|^~\\&|HIS|H1|PB|HOSP|20260301120000+0800||ADT^A08^ADT_A01|{control_id}|P|2.5\r"
        "EVN|A08|20260301120000+0800\r"
        f"PID|1||{mrn}^^^HOSP^MR||{family}^JANE||19800101|F\r"
        "PV1|1|I|W1^101^1\r"
    ).encode()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedGateway, Repository]]:
    """A real `pulsebridge serve` process, and the store it writes (to read its message log)."""
    tmp = tmp_path_factory.mktemp(f"nul-{request.param}")
    with ExitStack() as stack:
        if request.param == "sqlite":
            db = f"sqlite:///{tmp / 'nul.db'}"
            repository = open_repository(db)
        else:
            from adapters.storage.postgresql import PostgreSQLRepository

            schema = stack.enter_context(own_schema("pb_nul"))
            db, repository = schema_url(schema), PostgreSQLRepository(PG_URL, schema=schema)
        stack.callback(repository.close)
        gateway = ServedGateway(tmp, db=db)
        try:
            yield gateway, repository
        finally:
            output = gateway.stop()
        assert "Traceback" not in output, output


def _mllp_exchange(port: int, *messages: bytes) -> list[bytes]:
    """Send each message on ONE connection and read its ACK before the next (the connection must stay open)."""
    acks = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for message in messages:
            sock.sendall(frame(message))
            data = b""
            while not data.endswith(FRAME_END):
                chunk = sock.recv(65536)
                assert chunk, "the listener closed the connection without an ACK"
                data += chunk
            acks.append(data[1 : -len(FRAME_END)])
    return acks


def _assert_refused(ack: bytes, raw: bytes) -> None:
    """AR with ERR-3 code 100 and the NUL's byte offset; the ACK itself is valid ER7 (no NUL)."""
    answer = parse(ack)
    assert answer.get("MSA-1") == "AR"
    assert answer.get("MSA-2") == answer.get("MSA-2").replace("\x00", "") != ""
    assert answer.get("ERR-3.1") == "100"
    assert f"byte {raw.index(NUL)}" in answer.get("ERR-7")


def _dead_letters(repository: Repository, raw: bytes) -> list[LoggedMessage]:
    log = open_message_log(repository)
    return [row for row in log.by_status((REJECTED,), limit=1000) if row.raw == raw]


@pytest.mark.e2e
@pytest.mark.parametrize("where", sorted(WHERE))
def test_nul_over_mllp_is_refused_kept_once_and_the_connection_carries_on(
    served: tuple[ServedGateway, Repository], where: str
) -> None:
    gateway, repository = served
    poisoned = WHERE[where](f"M{where}")
    good = _message(f"GOOD-M{where}", "GOODMRN")
    refused, accepted = _mllp_exchange(gateway.mllp, poisoned, good)
    _assert_refused(refused, poisoned)
    assert parse(accepted).get("MSA-1") == "AA"
    [dead] = _dead_letters(repository, poisoned)
    assert dead.ack_code == "AR" and "NUL" in dead.reason and "\x00" not in dead.control_id
    assert gateway.alive()


@pytest.mark.e2e
@pytest.mark.parametrize("where", sorted(WHERE))
def test_nul_over_http_is_a_400_with_the_ar_never_a_500(served: tuple[ServedGateway, Repository], where: str) -> None:
    gateway, repository = served
    poisoned = WHERE[where](f"H{where}")
    response = requests.post(f"{gateway.base}/hl7/v2", data=poisoned, timeout=10)
    assert response.status_code == 400
    _assert_refused(response.content, poisoned)
    [dead] = _dead_letters(repository, poisoned)
    assert dead.ack_code == "AR" and dead.status == REJECTED
    assert requests.post(f"{gateway.base}/hl7/v2", data=_message(f"GOOD-H{where}", "GOODMRN"), timeout=10).status_code == 200


def test_the_reader_names_the_nul_offset_in_bytes_also_after_a_multibyte_character() -> None:
    raw = _message("C1", "MRN", family="诸葛\x00")
    with pytest.raises(ParseError) as caught:
        parse(raw)
    assert caught.value.code == "100" and caught.value.offset == raw.index(NUL)
    with pytest.raises(ParseError):
        parse(raw.decode())  # text input too


def test_the_ar_for_a_message_with_nul_in_its_header_drops_the_nul() -> None:
    raw = b"MSH|^~\\&|H\x00IS|H\x001|PB|HOSP|20260301||ADT^A08|C\x0002|P|2.5\rPID|1\r"
    ack = parse(ack_for_unparseable(raw, ParseError("bad", offset=17)))
    assert (ack.get("MSH-5"), ack.get("MSH-6"), ack.get("MSA-2"), ack.get("MSA-1")) == ("HIS", "H1", "C02", "AR")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repository]:
    with sql_store(request.param, tmp_path, "pb_nullog") as repository:
        yield repository


def test_the_message_log_replaces_nul_in_text_columns_alike_on_both_backends(store: Repository) -> None:
    log = open_message_log(store)
    raw = b"MSH|^~\\&|A\x00|B\r"
    message_id = log.record(LoggedMessage(0, utc_now(), "peer\x00", "mllp", "A\x00", "B", "C\x00D", "", "d", raw, REJECTED))
    with log.unit() as unit:
        log.finish(unit, message_id, REJECTED, "AR", "reason with \x00 in it")
    row = log.get(message_id)
    assert row is not None and row.raw == raw  # the bytes as received
    assert (row.peer, row.sending_application, row.control_id, row.reason) == (
        "peer\ufffd", "A\ufffd", "C\ufffdD", "reason with \ufffd in it")
