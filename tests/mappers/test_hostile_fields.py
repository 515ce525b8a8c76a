"""Whatever a sender puts in a field, conversion gives a Bundle or an HL7Error naming the problem, never a crash.

Corpus messages with fields replaced by awkward values (delimiters, escapes, huge and impossible
numbers and dates, other value types, CJK text): the ingest turns an HL7Error into an AE ACK with
its ERR segment; any other exception would be an unexplained dead letter."""
from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.hl7v2 import parse
from adapters.hl7v2.batch import split_messages
from adapters.hl7v2.errors import HL7Error
from mappers import convert_message

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "ms-fhir-converter" / "hl7v2"
MESSAGES = [c.payload for p in sorted(CORPUS.glob("*.hl7")) for c in split_messages(p.read_bytes())] if CORPUS.is_dir() else []
AWKWARD = [
    b"^", b"&", b"~", b"\\", b'""', b"\\X41\\", b"\\E\\", b"\\H\\", b"20231301", b"20230230", b"2023", b"-5", b"1e400",
    b"99999999999999999999", b"9" * 5000, b"-2147483649", b"9" * 400 + b".5", b"0", b"x" * 300, "王小红".encode(), b"+0800", b"20230101120000.1234+2400", b"2023010112",
    b"ST", b"NM", b"SN", b"CWE", b"TS", b"DT", b"ED", b"RP", b"TX", b"NA", b"<", b"=", b":", b"1:2", b"^^^^", b"&&&",
    b"1^2^3^4^5^6^7^8^9^10", b"", b"F", b"C", b"SEL", b"A",
]


@pytest.mark.skipif(not MESSAGES, reason="shared corpus not present")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_field_of_any_content_converts_or_is_an_hl7_error(data: st.DataObject) -> None:
    segments = re.split(rb"\r\n|\r|\n", data.draw(st.sampled_from(MESSAGES)))
    for _ in range(data.draw(st.integers(1, 4))):
        s = data.draw(st.integers(0, len(segments) - 1))
        fields = segments[s].split(b"|")
        first = 3 if segments[s].startswith(b"MSH") else 1  # MSH-1/MSH-2 are the delimiters
        if len(fields) <= first:
            continue
        k = data.draw(st.integers(first, len(fields) - 1))
        fields[k] = b"".join(data.draw(st.lists(st.sampled_from(AWKWARD), min_size=1, max_size=2)))
        segments[s] = b"|".join(fields)
    raw = b"\r".join(segments)
    try:
        bundle, _ = convert_message(parse(raw), raw)
    except HL7Error as error:
        assert str(error)
    else:
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
        assert orjson.loads(orjson.dumps(bundle)) == bundle  # what the store writes: every number fits JSON


@pytest.mark.skipif(not MESSAGES, reason="shared corpus not present")
@pytest.mark.parametrize("number", [b"9" * 5000, b"99999999999999999999", b"-2147483649", b"9" * 400 + b".5"])
def test_a_number_of_any_size_converts_to_json_or_is_left_out(number: bytes) -> None:
    raw = (CORPUS / "ADT-A06-01.hl7").read_bytes()
    raw = raw.replace(b"|N|1|US^United", b"|Y|" + number + b"|US^United")  # PID-25 birth order: FHIR integer
    raw = raw.replace(b"|NM|8867-4^heart rate^LN||44|", b"|NM|8867-4^heart rate^LN||" + number + b"|")  # OBX-5 NM: decimal
    bundle, _ = convert_message(parse(raw), raw)
    assert orjson.loads(orjson.dumps(bundle)) == bundle
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert "multipleBirthInteger" not in patient  # beyond FHIR's 32-bit integer
