"""No PHI in logs (issue 7, part 3; DESIGN.md "PHI never goes to logs").

The e2e test drives the real `pulsebridge serve` process (HTTP, MLLP, watched folder; SQLite and
PostgreSQL) with PHI-laden messages, searches and errors whose text would quote field contents, then
reads everything the process tree wrote to stdout and stderr and looks for each name, identifier,
birth date, phone number and address. Unit tests pin the safety net in gateway.log_hygiene.
"""
from __future__ import annotations

import io
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import hl7
import hl7.client
import pytest
import requests

from gateway.log_hygiene import WITHHELD, GunicornLogger, PhiSafeFormatter, redact_query_strings
from tests.gateway.pg_schema import own_schema, schema_url
from tests.gateway.served_gateway import ServedGateway

PHI = ["ZHUANG", "XIAOYAO", "诸葛", "孔明", "PHIMRN7788", "110105197311190016", "19731119", "1973-11-19",
       "13912345678", "PINETREE", "19731139"]
PID = ("PID|1||PHIMRN7788^^^HOSP^MR~110105197311190016^^^CHN^NNCHN||{name}||{birth}|M|||PINETREE LANE 42^^BEIJING||"
       "^PRN^CP^^86^^13912345678\r")


def _message(control_id: str, kind: str, *, name: str = "ZHUANGZHOU^XIAOYAO", birth: str = "19731119", tail: str = "") -> bytes:
    header = f"MSH|^~\\&|HIS|H1|PB|HOSP|20260301120000+0800||{kind}|{control_id}|P|2.5\r"
    return (header + PID.format(name=name, birth=birth) + "PV1|1|I|W1^101^1||||||||||||||||PHIVISIT1^^^HOSP^VN\r" + tail).encode()


# -- the safety net, in process ---------------------------------------------------------------------


def _format(record_logger: logging.Logger, formatter: logging.Formatter, emit: callable) -> str:  # type: ignore[valid-type]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    record_logger.addHandler(handler)
    try:
        emit()
    finally:
        record_logger.removeHandler(handler)
    return stream.getvalue()


def test_exception_text_is_withheld_but_types_and_frames_are_kept() -> None:
    logger = logging.getLogger("tests.phi")
    logger.propagate = False

    name, mrn, birth = PHI[0], PHI[4], PHI[-1]  # traceback frames quote source lines: keep the values out of them

    def fail() -> None:
        try:
            try:
                raise ValueError(f"{birth!r} is not a date for {name}")
            except ValueError as inner:
                raise RuntimeError(f"storing Patient {mrn} failed") from inner
        except RuntimeError:
            logger.exception("storing message %s failed", 42)

    text = _format(logger, PhiSafeFormatter("%(levelname)s %(message)s"), fail)
    assert text.startswith("ERROR storing message 42 failed")
    assert "builtins.ValueError: " + WITHHELD in text and "builtins.RuntimeError: " + WITHHELD in text
    assert "in fail" in text and "The above exception led to" in text
    assert not [word for word in PHI if word in text]


def test_a_traceback_another_handler_rendered_first_is_not_reused() -> None:
    logger = logging.getLogger("tests.phi.cached")
    logger.propagate = False
    plain, safe = io.StringIO(), io.StringIO()
    for stream, formatter in ((plain, logging.Formatter("%(message)s")), (safe, PhiSafeFormatter("%(message)s"))):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    mrn = PHI[4]
    try:
        raise KeyError(mrn)
    except KeyError:
        logger.exception("lookup failed")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    assert mrn in plain.getvalue()  # the plain formatter ran first and rendered the text
    assert mrn not in safe.getvalue() and WITHHELD in safe.getvalue()


def test_query_strings_are_cut_from_any_line() -> None:
    line = "Invalid request from ip=10.0.0.9: Invalid HTTP request line: 'GET /fhir/Patient?name=ZHUANGZHOU&x=1 X HTTP/1.1'"
    assert redact_query_strings(line) == "Invalid request from ip=10.0.0.9: Invalid HTTP request line: 'GET /fhir/Patient?[...] X HTTP/1.1'"
    logger = logging.getLogger("tests.phi.query")
    logger.propagate = False
    text = _format(logger, PhiSafeFormatter("%(message)s"), lambda: logger.warning("%s", line))
    assert "ZHUANGZHOU" not in text and "/fhir/Patient?[...]" in text


def test_gunicorn_access_atoms_carry_no_query_headers_or_environment() -> None:
    from gunicorn.config import Config

    config = Config()
    config.set("accesslog", "-")
    log = GunicornLogger(config)
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/fhir/Patient?name=ZHUANGZHOU", "SERVER_PROTOCOL": "HTTP/1.1",
               "PATH_INFO": "/fhir/Patient", "QUERY_STRING": "name=ZHUANGZHOU", "REMOTE_ADDR": "10.0.0.9",
               "HTTP_REFERER": "http://app/fhir/Patient?identifier=PHIMRN7788"}
    request = SimpleNamespace(headers=[("AUTHORIZATION", "Bearer secret")])
    response = SimpleNamespace(status="200 OK", headers=[], sent=10)
    atoms = log.atoms(response, request, environ, SimpleNamespace(seconds=0, microseconds=5))
    assert atoms["r"] == "GET /fhir/Patient?[...] HTTP/1.1" and atoms["q"] == "" and atoms["U"] == "/fhir/Patient"
    assert not [value for value in map(str, atoms.values()) if "ZHUANGZHOU" in value or "PHIMRN7788" in value or "secret" in value]


# -- the real server --------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The served database URL: a SQLite file, or a PostgreSQL schema of its own (search_path in the URL)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'phi.db'}"
        return
    with own_schema("pb_phi") as schema:
        yield schema_url(schema)


def _mllp(port: int, raw: bytes) -> str:
    with hl7.client.MLLPClient("127.0.0.1", port) as client:
        return str(hl7.parse(client.send_message(raw.decode()).decode()).segment("MSA")[1])


def _raw_http(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(4096)


@pytest.mark.e2e
def test_phi_sent_searched_and_failed_never_reaches_the_logs(database: str, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    gateway = ServedGateway(tmp_path, "--watch", str(drop), db=database)
    try:
        fhir = f"{gateway.base}/fhir"
        # MLLP: accepted (then searched for by every PHI field), AE whose error quotes the birth date, AE quoting the name
        assert _mllp(gateway.mllp, _message("PHI1", "ADT^A01^ADT_A01")) == "AA"
        for params in ({"name": "ZHUANGZHOU", "identifier": "PHIMRN7788"}, {"birthdate": "1973-11-19"},
                       {"phone": "+86 13912345678"}, {"address": "PINETREE"}, {"given": "XIAOYAO"}):
            response = requests.get(f"{fhir}/Patient", params=params, timeout=10)
            assert response.status_code == 200 and response.json()["total"] == 1, params
        assert _mllp(gateway.mllp, _message("PHI2", "ADT^A08^ADT_A01", birth="19731139")) == "AE"
        bad_value = "OBR|1|P1|F1|1^x^LN|||20260301\rOBX|1|DT|1^x^LN||ZHUANGZHOU XIAOYAO\r"
        assert _mllp(gateway.mllp, _message("PHI3", "ORU^R01^ORU_R01", tail=bad_value)) == "AE"
        # HTTP: an HL7 message (the A08 renames the patient), a garbage body, a search naming the patient
        chinese = _message("PHI4", "ADT^A08^ADT_A01", name="诸葛^孔明")
        assert requests.post(f"{gateway.base}/hl7/v2", data=chinese, timeout=10).status_code == 200
        assert requests.post(f"{gateway.base}/hl7/v2", data=b"ZHUANGZHOU PHIMRN7788", timeout=10).status_code == 400
        assert requests.get(f"{fhir}/Patient", params={"name": "诸葛孔明", "identifier": "PHIMRN7788"}, timeout=10).status_code == 200
        # invalid FHIR writes carrying PHI: a bad code, malformed JSON, a control character
        invalid = {"resourceType": "Patient", "name": [{"family": "ZHUANGZHOU"}], "gender": "XIAOYAO", "birthDate": "19731139"}
        assert requests.post(f"{fhir}/Patient", json=invalid, timeout=10).status_code in (400, 422)
        broken = b'{"resourceType":"Patient","name":[{"family":"ZHUANGZHOU"}'
        assert requests.post(f"{fhir}/Patient", data=broken, headers={"Content-Type": "application/fhir+json"}, timeout=10).status_code == 400
        nul = '{"resourceType":"Patient","name":[{"family":"ZHUANGZHOU\\u0000"}]}'
        assert requests.post(f"{fhir}/Patient", data=nul, headers={"Content-Type": "application/fhir+json"}, timeout=10).status_code == 422
        # a request line gunicorn cannot parse, whose query names the patient (gunicorn logs it as a warning)
        answer = _raw_http(gateway.http, b"GET /fhir/Patient?name=ZHUANGZHOU&identifier=PHIMRN7788\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400")
        # a NUL (no ER7 has one): refused AR at the edge on both stores; the rejection is logged without the name
        poisoned = _message("PHI5", "ADT^A08^ADT_A01", name="ZHUANG\x00ZHOU^XIAOYAO")
        assert _mllp(gateway.mllp, poisoned) == "AR"
        # the watched folder: a file with a bad birth date goes to failed/
        (drop / "phi.hl7").write_bytes(_message("PHI6", "ADT^A08^ADT_A01", birth="19731139"))
        deadline = time.monotonic() + 20
        while not (drop / "failed" / "phi.hl7").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (drop / "failed" / "phi.hl7").exists()
        assert gateway.alive()
    finally:
        output = gateway.stop()
    assert "Invalid HTTP request line: 'GET /fhir/Patient?[...]'" in output  # gunicorn logged the line, cut
    leaked = [word for word in PHI if word.lower() in output.lower()]
    assert leaked == [], output
