"""The fast engine is a pure function of the message: same input, same Bundle, byte for byte.

Covers what the throughput work could break (issue 3, benchmark): compiled maps (engine.compile_map)
must do exactly what the row interpreter (engine.interpret_map) does; per-conversion caches
(field repetitions, scope lookups, ids) must not leak between messages; pruning without copying
must not leave one object in two places of a Bundle. With PULSEBRIDGE_BEFORE_TREE set to a copy
of `mappers/` and `adapters/hl7v2/` taken before a speed change (bench/bench_convert.py --before),
the whole corpus must convert to the very same NDJSON bytes with that code and with this checkout.
"""
from __future__ import annotations

import functools
import os
import re
import uuid
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.hl7v2 import parse
from adapters.hl7v2.batch import split_messages
from adapters.hl7v2.errors import HL7Error
from bench.bench_convert import ndjson_of
from mappers import engine, ids
from mappers.paths import prune
from mappers.primitives import date_time
from mappers.specs import SPEC_DIR, load_specs

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "ms-fhir-converter" / "hl7v2"
CORPUS_FILES = sorted(CORPUS.glob("*.hl7")) if CORPUS.is_dir() else []
pytestmark = pytest.mark.skipif(not CORPUS_FILES, reason=f"corpus not found at {CORPUS}")


def _messages() -> list[tuple[str, bytes]]:
    return [(f"{path.name}#{chunk.index + 1}", chunk.payload) for path in CORPUS_FILES for chunk in split_messages(path.read_bytes())]


def _convert(raw: bytes, specs: Any = None) -> tuple[bytes, bytes]:
    bundle, report = engine.convert_message(parse(raw), raw, specs=specs)
    return orjson.dumps(bundle), orjson.dumps(report.as_dict(with_ig=False))


def test_each_message_converts_identically_twice_and_in_any_order() -> None:
    messages = _messages()
    first = {name: _convert(raw) for name, raw in messages}
    second = {name: _convert(raw) for name, raw in reversed(messages)}  # other caches warm, other order
    assert [n for n in first if first[n] != second[n]] == []


def test_compiled_maps_do_what_the_row_interpreter_does() -> None:
    interpreted = load_specs.__wrapped__(SPEC_DIR)  # a fresh, uncached Specs whose maps we interpret
    for m in interpreted.maps.values():
        m.compiled = functools.partial(_interpret, m)
    differ = [name for name, raw in _messages() if _convert(raw) != _convert(raw, interpreted)]
    assert differ == []
    assert all(isinstance(m.compiled, functools.partial) for m in interpreted.maps.values())


def test_no_resource_of_a_bundle_holds_an_empty_element() -> None:
    # what the pruning would change: resources left unpruned (engine.map_clean) must not hold any
    unpruned = []
    for name, raw in _messages():
        bundle, _ = engine.convert_message(parse(raw), raw)
        unpruned += [name for entry in bundle["entry"] if prune(entry["resource"]) is not entry["resource"]]
    assert unpruned == []


_HOLLOW = ["", " ", "^", "^^ ", "&", '""', "~", "^&^", " ~ "]  # fields a sender leaves blank, or fills with separators only


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_blanked_fields_never_leave_an_empty_element_in_unpruned_resources(data: st.DataObject) -> None:
    """Beyond the corpus: random fields of corpus messages emptied, spaced or filled with bare separators
    must still give resources free of empty elements, the ones the engine does not prune included."""
    name, raw = data.draw(st.sampled_from(_messages()), label="message")
    segments = re.split(rb"\r\n|\r|\n", raw.strip())
    for _ in range(data.draw(st.integers(1, 6), label="fields")):
        s = data.draw(st.integers(1, len(segments) - 1), label="segment") if len(segments) > 1 else 0
        fields = segments[s].split(b"|")
        if len(fields) < 2:
            continue
        f = data.draw(st.integers(1, len(fields) - 1), label="field")
        fields[f] = data.draw(st.sampled_from(_HOLLOW)).encode()
        segments[s] = b"|".join(fields)
    mutated = b"\r".join(segments)
    try:
        bundle, _ = engine.convert_message(parse(mutated), mutated)
    except HL7Error:
        return  # refused with its location (e.g. a required part now missing): nothing was made
    assert [e["fullUrl"] for e in bundle["entry"] if prune(e["resource"]) is not e["resource"]] == [], name


def test_a_map_is_clean_only_when_every_row_is() -> None:
    specs = load_specs.__wrapped__(SPEC_DIR)
    assert engine.map_clean(specs.maps["PID[Patient]"], specs)  # the shortcut is taken, not just harmless
    assert engine.map_clean(specs.maps["CWE[CodeableConcept]"], specs)  # vocabulary data without empty codes
    assert engine.map_clean(specs.maps["PL[Location]"], specs)  # location_hierarchy gives a Reference
    assert not engine.map_clean(specs.maps["ED[Attachment]"], specs)  # encapsulated_data may give ""
    assert not engine.map_clean(specs.maps["OBX[DocumentReference]"], specs)  # append_attachment_text writes directly
    assert not engine.map_clean(specs.maps["RXA[Immunization]"], specs)  # located_at_address writes into made resources


BEFORE_TREE = os.environ.get("PULSEBRIDGE_BEFORE_TREE")


@pytest.mark.skipif(not BEFORE_TREE, reason="PULSEBRIDGE_BEFORE_TREE (the code before a speed change) not set")
def test_the_corpus_converts_to_the_same_bytes_as_the_code_before_the_change() -> None:
    before, after = ndjson_of(Path(str(BEFORE_TREE)), CORPUS), ndjson_of(ROOT, CORPUS)
    assert len(after.splitlines()) == 139
    differ = [n for n, (a, b) in enumerate(zip(before.splitlines(), after.splitlines()), 1) if a != b]
    assert differ == [] and before == after


def _interpret(m: Any, ctx: Any, out: dict[str, Any]) -> Any:
    return engine.interpret_map(m, ctx, out)


def _containers(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _containers(value)
    elif isinstance(node, list):
        yield node
        for value in node:
            yield from _containers(value)


def test_no_object_appears_twice_in_a_bundle() -> None:
    shared = []
    for name, raw in _messages():
        bundle, _ = engine.convert_message(parse(raw), raw)
        seen: set[int] = set()
        for container in _containers(bundle):
            if id(container) in seen:
                shared.append(name)
                break
            seen.add(id(container))
    assert shared == []


def test_an_impossible_date_still_names_its_location() -> None:
    from adapters.hl7v2.errors import DataTypeError

    raw = b"MSH|^~\\&|APP|FAC|||20240101120000||ADT^A01|1|P|2.5\rPID|1||123^^^HOSP^MR||DOE^JOHN||20230230\r"
    with pytest.raises(DataTypeError) as caught:
        engine.convert_message(parse(raw), raw)
    assert caught.value.location is not None and (caught.value.location.segment, caught.value.location.field) == ("PID", 7)


@pytest.mark.parametrize("name", ["", "Patient|urn:oid:1.2.3|MR|12345", "Practitioner|GHH|DN|Müller^José", "Location|x|" + "漢" * 40])
def test_ids_are_the_uuid5_of_the_documented_rule(name: str) -> None:
    assert ids.uuid5_text(name) == str(uuid.uuid5(ids.NAMESPACE, name))


def test_a_fixed_offset_zone_gives_the_offset_an_iana_zone_would() -> None:
    assert date_time("202407151230", timezone(timedelta(hours=-5, minutes=-30))) == "2024-07-15T12:30:00-05:30"
    assert date_time("202407151230", timezone.utc) == date_time("202407151230", ZoneInfo("UTC")) == "2024-07-15T12:30:00+00:00"
    assert date_time("202401151230", ZoneInfo("Europe/Berlin")) == "2024-01-15T12:30:00+01:00"
