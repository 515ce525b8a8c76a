"""Throughput of HL7 v2 -> FHIR conversion over the whole corpus, single process (issue 3 benchmark).

    python bench/bench_convert.py [CORPUS_DIR] [--rounds N]

One run prints, for each of: parsing only (the baseline), parse + convert, and parse + convert +
orjson serialisation (what `pulsebridge convert` does per message), messages/s and resources/s
as the median and the best of N rounds over the corpus, by wall clock and by this process's CPU
time (other processes on the machine slow the wall clock, not the CPU time), plus the
parse/convert ratio and the machine's load average before and after. A first line gives the
cold pass: each message converted once in a fresh process (specs loaded, maps not yet compiled);
a `floor` line sums each message's fastest parse + convert, the figure to compare versions by.
No model validation on this path (DESIGN.md: validate at the edges, in tests).

`--before DIR` also times the conversion code of another tree (DIR holds `mappers/` and
`adapters/hl7v2/`, e.g. a copy taken before a change; on sys.path ahead of this checkout, so
anything it lacks comes from here) against this one: first both convert the whole corpus to
NDJSON and the run stops unless the bytes are identical, then fresh child processes of the
two alternate, each timing parse + convert + orjson by CPU time per round and by wall time per
message, and the CPU medians, the floors (per-message minima summed, as above) and their ratios
are printed (on a shared 2-core machine only same-run ratios are comparable).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import orjson

from adapters.hl7v2 import parse
from adapters.hl7v2.batch import split_messages
from gateway.runtime import tune_collector
from mappers import convert_message
from mappers.specs import load_specs

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "ms-fhir-converter" / "hl7v2"


class Figures:
    """Messages/s and resources/s of one workload, per round, by wall clock and CPU time."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.resources_per_message = 0.0

    def line(self) -> str:
        def rates(seconds: list[float], n: int) -> tuple[float, float]:
            per_round = [n / s for s in seconds]
            return statistics.median(per_round), max(per_round)

        n = self.n
        wall_median, wall_best = rates(self.wall, n)
        cpu_median, cpu_best = rates(self.cpu, n)
        res = self.resources_per_message
        return (
            f"{self.label:26s} wall: median {wall_median:7.0f} best {wall_best:7.0f} msg/s"
            f" | cpu: median {cpu_median:7.0f} best {cpu_best:7.0f} msg/s"
            + (f" | {res * cpu_median:8.0f} resources/s (cpu median)" if res else "")
        )

    n = 0


def measure(label: str, messages: list[bytes], work: Callable[[bytes], int], rounds: int) -> Figures:
    figures = Figures(label)
    figures.n = len(messages)
    resources = 0
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        resources = 0
        for raw in messages:
            resources += work(raw)
        figures.cpu.append(max(time.process_time() - cpu, 1e-9))
        figures.wall.append(max(time.perf_counter() - wall, 1e-9))
    figures.resources_per_message = resources / len(messages)
    return figures


def per_message_floor(messages: list[bytes], work: Callable[[bytes], int], tries: int) -> float:
    """Seconds for the corpus when every message runs at its fastest of `tries` (per-message minima
    summed): on a shared 2-core machine other processes inflate rounds unevenly, and the minimum
    of each message is the most repeatable figure for comparing two versions of the code."""
    best = [float("inf")] * len(messages)
    clock = time.perf_counter
    for _ in range(tries):
        for i, raw in enumerate(messages):
            start = clock()
            work(raw)
            elapsed = clock() - start
            if elapsed < best[i]:
                best[i] = elapsed
    return sum(best)


_CHILD = """
import sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import orjson
from adapters.hl7v2 import parse
from adapters.hl7v2.batch import split_messages
from mappers import convert_message
from mappers.specs import load_specs
from pathlib import Path
messages = [c.payload for p in sorted(Path(sys.argv[3]).glob("*.hl7")) for c in split_messages(p.read_bytes())]
load_specs()
from gateway.runtime import tune_collector
tune_collector()
if sys.argv[4] == "ndjson":
    sys.stdout.buffer.write(b"".join(orjson.dumps(convert_message(parse(raw), raw)[0]) + b"\\n" for raw in messages))
    raise SystemExit
for raw in messages:  # warm: maps compiled, caches filled
    orjson.dumps(convert_message(parse(raw), raw)[0])
clock = time.perf_counter
for _ in range(int(sys.argv[4])):
    cpu, resources, each = time.process_time(), 0, []
    for raw in messages:
        start = clock()
        bundle = convert_message(parse(raw), raw)[0]
        orjson.dumps(bundle)
        each.append(clock() - start)
        resources += len(bundle["entry"])
    print(time.process_time() - cpu, resources, *each)
"""


def run_tree(tree: Path, corpus: Path, mode: str) -> bytes:
    """Run _CHILD with tree's `mappers/` and `adapters/hl7v2/` ahead of this checkout on sys.path."""
    here = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-c", _CHILD, str(tree.resolve()), str(here), str(corpus), mode],
                          check=True, capture_output=True, cwd=tree).stdout


def ndjson_of(tree: Path, corpus: Path = DEFAULT_CORPUS) -> bytes:
    """The corpus converted by tree's code, one Bundle per line (orjson), in a fresh process."""
    return run_tree(tree, corpus, "ndjson")


def compare_with(tree: Path, corpus: Path, children: int, rounds: int) -> None:
    """Byte-identical NDJSON first, then alternate child processes of `tree` and this checkout; print medians and ratio."""
    here = Path(__file__).resolve().parents[1]
    before_out, after_out = ndjson_of(tree, corpus), ndjson_of(here, corpus)
    if before_out != after_out:
        differ = sum(a != b for a, b in zip(before_out.splitlines(), after_out.splitlines()))
        raise SystemExit(f"output differs from {tree}: {differ} of {len(after_out.splitlines())} messages")
    n = len(after_out.splitlines())
    print(f"output byte-identical to {tree}: {n} messages, {len(after_out):,} bytes of NDJSON")
    times: dict[str, list[float]] = {"before": [], "after": []}
    floors = {"before": [float("inf")] * n, "after": [float("inf")] * n}  # per message, fastest wall time seen
    resources = 0
    for _ in range(children):
        for label, t in (("before", tree), ("after", here)):
            for line in run_tree(t, corpus, str(rounds)).decode().split("\n"):
                if line:
                    seconds, count, *each = line.split()
                    times[label].append(float(seconds))
                    resources = int(count)
                    floors[label] = [min(a, float(b)) for a, b in zip(floors[label], each)]
    for label, seconds in times.items():
        median, floor = statistics.median(seconds), sum(floors[label])
        print(f"{label:6s} parse + convert + orjson: cpu median {n / median:5.0f} msg/s, {resources / median:6.0f} resources/s"
              f" (best round {n / min(seconds):.0f} msg/s; {len(seconds)} rounds in {children} processes);"
              f" floor {n / floor:5.0f} msg/s, {resources / floor:6.0f} resources/s")
    print(f"ratio after/before: cpu medians {statistics.median(times['before']) / statistics.median(times['after']):.2f},"
          f" floors {sum(floors['before']) / sum(floors['after']):.2f}")
    print(f"load average (1/5/15 min) at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--rounds", type=int, default=15, help="rounds over the corpus per workload (default 15)")
    parser.add_argument("--before", type=Path, metavar="DIR", help="also time the mappers/ and adapters/hl7v2/ of DIR, alternating")
    parser.add_argument("--children", type=int, default=5, help="with --before: child processes per tree (default 5)")
    args = parser.parse_args()
    if args.before is not None:
        if not (args.before / "mappers" / "engine.py").is_file():
            parser.error(f"--before {args.before}: no mappers/engine.py there")
        compare_with(args.before, args.corpus, args.children, max(1, args.rounds // args.children))
        return
    messages = [chunk.payload for path in sorted(args.corpus.glob("*.hl7")) for chunk in split_messages(path.read_bytes())]
    if not messages:
        parser.error(f"no *.hl7 messages under {args.corpus}")
    load_before = os.getloadavg()
    load_specs()  # spec loading is start-up work, not per message
    tune_collector()  # as `pulsebridge convert` runs

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

    cold = measure("cold pass (first round)", messages, parse_convert, 1)
    floor = per_message_floor(messages, parse_convert, max(3, args.rounds // 3))
    results = [
        measure("parse (baseline)", messages, parse_only, args.rounds),
        measure("parse + convert", messages, parse_convert, args.rounds),
        measure("parse + convert + orjson", messages, parse_convert_dump, args.rounds),
    ]
    load_after = os.getloadavg()
    print(f"corpus: {len(messages)} messages from {args.corpus}; {args.rounds} rounds; CPUs: {os.cpu_count()}")
    print(f"load average (1/5/15 min) before: {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}"
          f", after: {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}")
    print(cold.line())
    for figures in results:
        print(figures.line())
    print(f"{'parse + convert, floor':26s} sum of per-message minima over {max(3, args.rounds // 3)} tries:"
          f" {1000 * floor:.1f} ms per corpus = {len(messages) / floor:.0f} msg/s (least disturbed by other processes)")
    parse_cpu = statistics.median(results[0].cpu)
    convert_cpu = statistics.median(results[1].cpu)
    print(f"ratio parse : parse + convert (cpu medians) = 1 : {convert_cpu / parse_cpu:.1f}"
          f"  ({1000 * convert_cpu / len(messages):.2f} ms per message, "
          f"{results[1].resources_per_message:.1f} resources per message)")


if __name__ == "__main__":
    main()
