"""Throughput of HL7 v2 -> FHIR conversion over the whole corpus, single process.

    python bench/bench_convert.py [CORPUS_DIR] [--rounds N]

Prints messages/s and resources/s for: parsing only (baseline), parse + convert, and
parse + convert + orjson serialisation (what `pulsebridge convert` does per message).
No model validation on this path (DESIGN.md: validate at the edges, in tests).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import orjson

from adapters.hl7v2 import parse
from adapters.hl7v2.batch import split_messages
from mappers import convert_message
from mappers.specs import load_specs

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "ms-fhir-converter" / "hl7v2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    messages = [chunk.payload for path in sorted(args.corpus.glob("*.hl7")) for chunk in split_messages(path.read_bytes())]
    load_specs()  # spec loading is start-up work, not per message
    for raw in messages:  # warm caches (terminology maps, compiled paths)
        convert_message(parse(raw), raw)

    def run(label: str, work) -> None:
        resources = 0
        start = time.perf_counter()
        for _ in range(args.rounds):
            for raw in messages:
                resources += work(raw)
        elapsed = time.perf_counter() - start
        total = len(messages) * args.rounds
        print(f"{label:32s} {total / elapsed:9.0f} messages/s {resources / elapsed:10.0f} resources/s  ({total} messages, {elapsed:.2f} s)")

    def parse_only(raw: bytes) -> int:
        msg = parse(raw)
        for seg in msg.segments:
            seg.reps(3)
        return 0

    def parse_convert(raw: bytes) -> int:
        bundle, _ = convert_message(parse(raw), raw)
        return len(bundle["entry"])

    def parse_convert_dump(raw: bytes) -> int:
        bundle, _ = convert_message(parse(raw), raw)
        orjson.dumps(bundle)
        return len(bundle["entry"])

    print(f"corpus: {len(messages)} messages from {args.corpus}")
    run("parse (baseline)", parse_only)
    run("parse + convert", parse_convert)
    run("parse + convert + orjson", parse_convert_dump)


if __name__ == "__main__":
    main()
