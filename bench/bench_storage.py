"""In-process storage benchmark: transaction ingest and Observation?patient=&code=&date= latency.

    /work/venv/bin/python bench/bench_storage.py [--patients 1000] [--per-patient 200]
        [--sqlite PATH] [--pg postgresql://127.0.0.1:5432/test]

Prints resources/s for ingest through Repository.transaction() (PUT entries with deterministic
ids, as the HL7 mappers send them) beside a baseline in the same run: a raw executemany of the
same orjson documents into a bare two-column table. Then search p50/p99 over random patients,
codes and date ranges, and read latency. The HTTP-level figures are measured separately.

`--before DIR` also ingests the same dataset with the storage code of another checkout (e.g. a
`git worktree` of the previous commit) in a child process, alternating with this one, and prints
the ratio: on a shared 2-core machine only same-run ratios are comparable.
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.storage.base import BundleEntryRequest, Repository  # noqa: E402
from adapters.storage.query import parse_search  # noqa: E402

LOINC = [
    ("8867-4", "Heart rate", "/min", 50, 120), ("8480-6", "Systolic blood pressure", "mm[Hg]", 90, 180),
    ("8462-4", "Diastolic blood pressure", "mm[Hg]", 50, 110), ("8310-5", "Body temperature", "Cel", 35, 40),
    ("9279-1", "Respiratory rate", "/min", 10, 30), ("2708-6", "Oxygen saturation", "%", 85, 100),
    ("29463-7", "Body weight", "kg", 40, 120), ("8302-2", "Body height", "cm", 140, 200),
    ("2339-0", "Glucose", "mmol/L", 3, 15), ("2160-0", "Creatinine", "umol/L", 40, 200),
    ("718-7", "Hemoglobin", "g/dL", 8, 18), ("6690-2", "Leukocytes", "10*3/uL", 2, 20),
    ("777-3", "Platelets", "10*3/uL", 100, 450), ("2951-2", "Sodium", "mmol/L", 130, 150),
    ("2823-3", "Potassium", "mmol/L", 3, 6), ("1742-6", "ALT", "U/L", 5, 100),
    ("1920-8", "AST", "U/L", 5, 100), ("2093-3", "Cholesterol", "mmol/L", 3, 8),
    ("4548-4", "HbA1c", "%", 4, 12), ("33914-3", "eGFR", "mL/min", 15, 120),
]
START = 1_704_067_200  # 2024-01-01T00:00:00Z


def patient(n: int) -> dict:
    return {
        "resourceType": "Patient", "id": f"pat-{n}",
        "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": f"MRN{n:06d}"}],
        "name": [{"family": f"Family{n % 97}", "given": [f"Given{n}"]}],
        "gender": "female" if n % 2 else "male", "birthDate": f"{1930 + n % 80}-{1 + n % 12:02d}-{1 + n % 28:02d}",
    }


def observation(rng: random.Random, n: int, i: int) -> dict:
    code, display, unit, low, high = LOINC[i % len(LOINC)]
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START + rng.randrange(365 * 86400)))
    return {
        "resourceType": "Observation", "id": f"obs-{n}-{i}", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs" if i % len(LOINC) < 8 else "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": f"Patient/pat-{n}"},
        "effectiveDateTime": when, "issued": when.replace("Z", ".000Z"),
        "valueQuantity": {"value": round(rng.uniform(low, high), 1), "unit": unit,
                          "system": "http://unitsofmeasure.org", "code": unit},
    }


def dataset(patients: int, per_patient: int) -> list[dict]:
    rng = random.Random(4)
    out = []
    for n in range(patients):
        out.append(patient(n))
        out += [observation(rng, n, i) for i in range(per_patient - 1)]
    return out


def ingest(repo: Repository, resources: list[dict], batch: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(resources), batch):
        entries = [BundleEntryRequest("PUT", f"{r['resourceType']}/{r['id']}", r) for r in resources[i : i + batch]]
        repo.transaction(entries)
    return len(resources) / (time.perf_counter() - started)


def baseline_sqlite(resources: list[dict], path: str) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE bare (id TEXT PRIMARY KEY, resource BLOB)")
    started = time.perf_counter()
    for i in range(0, len(resources), 1000):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO bare VALUES (?, ?)", [(r["id"], orjson.dumps(r)) for r in resources[i : i + 1000]])
        conn.execute("COMMIT")
    rate = len(resources) / (time.perf_counter() - started)
    conn.close()
    return rate


def baseline_pg(resources: list[dict], url: str, schema: str) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.bare (id TEXT PRIMARY KEY, resource JSONB)")
        started = time.perf_counter()
        for i in range(0, len(resources), 1000):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {schema}.bare VALUES (%s, %s::jsonb)",
                                [(r["id"], orjson.dumps(r).decode()) for r in resources[i : i + 1000]])
        rate = len(resources) / (time.perf_counter() - started)
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return rate


_CHILD = """
import gc, os, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
from adapters.storage.sqlite import SQLiteRepository  # first: bench_storage puts this checkout on sys.path
sys.path.insert(0, sys.argv[2])
from bench_storage import dataset, ingest
resources = dataset(int(sys.argv[3]), int(sys.argv[4]))
gc.collect()
gc.freeze()
with tempfile.TemporaryDirectory() as tmp:
    repo = SQLiteRepository(f"sqlite:///{os.path.join(tmp, 'child.db')}")
    cpu = time.process_time()
    wall_rate = ingest(repo, resources, int(sys.argv[5]))
    print(wall_rate, len(resources) / (time.process_time() - cpu))
    repo.close()
"""


def ingest_rate_of(tree: str, patients: int, per_patient: int, batch: int) -> tuple[float, float]:
    """SQLite ingest (wall rate, CPU-time rate) of the storage code in checkout `tree`, same dataset, fresh process."""
    import subprocess

    bench_dir = str(Path(__file__).resolve().parent)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(Path(tree).resolve()), bench_dir, str(patients), str(per_patient), str(batch)],
        check=True, capture_output=True, text=True, cwd=tree,
    ).stdout
    wall, cpu = out.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def compare_with(tree: str, patients: int, per_patient: int, batch: int, rounds: int) -> None:
    """Alternate runs of `tree` and this checkout; print each rate and the ratio of the medians.

    Beside wall-clock rates, the rate per CPU second of the ingesting process: on a machine other
    jobs share, it moves far less with their load (the load average is printed too).
    """
    here = str(Path(__file__).resolve().parent.parent)
    before: list[tuple[float, float]] = []
    after: list[tuple[float, float]] = []
    for _ in range(rounds):
        before.append(ingest_rate_of(tree, patients, per_patient, batch))
        after.append(ingest_rate_of(here, patients, per_patient, batch))
    for label, runs in ((f"before ({tree})", before), (f"after  ({here})", after)):
        print(f"sqlite ingest {label}: {', '.join(f'{w:,.0f}' for w, _ in runs)} resources/s wall; "
              f"{', '.join(f'{c:,.0f}' for _, c in runs)} per CPU second")
    for i, name in enumerate(("wall", "CPU-time")):
        ratio = statistics.median(r[i] for r in after) / statistics.median(r[i] for r in before)
        print(f"sqlite ingest {name} medians: after {statistics.median(r[i] for r in after):,.0f}/s, "
              f"before {statistics.median(r[i] for r in before):,.0f}/s, ratio {ratio:.2f}")
    print(f"load average (1/5/15 min) at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure_search(repo: Repository, patients: int, queries: int) -> dict[str, float]:
    rng = random.Random(7)
    times, reads, hits = [], [], 0
    for _ in range(queries):
        n = rng.randrange(patients)
        code = LOINC[rng.randrange(len(LOINC))][0]
        month = rng.randrange(1, 12)
        query = parse_search("Observation", [("patient", f"pat-{n}"), ("code", f"http://loinc.org|{code}"),
                                             ("date", f"ge2024-{month:02d}-01"), ("date", f"lt2024-{month + 1:02d}-01")])
        started = time.perf_counter()
        result = repo.search(query)
        times.append((time.perf_counter() - started) * 1000)
        hits += len(result.matches)
        started = time.perf_counter()
        repo.read("Observation", f"obs-{n}-{rng.randrange(1, 50)}")
        reads.append((time.perf_counter() - started) * 1000)
    return {"search_p50_ms": statistics.median(times), "search_p99_ms": percentile(times, 99),
            "read_p50_ms": statistics.median(reads), "read_p99_ms": percentile(reads, 99), "hits": hits}


def report(name: str, rate: float, baseline: float, latencies: dict[str, float], count: int) -> None:
    print(f"{name}: ingest {rate:,.0f} resources/s via transaction() "
          f"(baseline raw executemany {baseline:,.0f}/s) into {count:,} resources")
    print(f"{name}: Observation?patient=&code=&date= p50 {latencies['search_p50_ms']:.2f} ms, "
          f"p99 {latencies['search_p99_ms']:.2f} ms ({latencies['hits']} hits); "
          f"read p50 {latencies['read_p50_ms']:.2f} ms, p99 {latencies['read_p99_ms']:.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--per-patient", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--sqlite", default=None, help="database file (default: a temporary file)")
    parser.add_argument("--pg", default=os.environ.get("PULSEBRIDGE_TEST_PG"), help="PostgreSQL URL (optional)")
    parser.add_argument("--before", default=None, help="another checkout to compare SQLite ingest with")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per checkout with --before")
    args = parser.parse_args()
    if args.before:
        compare_with(args.before, args.patients, args.per_patient, args.batch, args.rounds)
    resources = dataset(args.patients, args.per_patient)
    # The generated dataset (millions of objects) is benchmark scaffolding: keep the cyclic GC from
    # rescanning it during measurements, as a server process would not hold it.
    gc.collect()
    gc.freeze()
    print(f"dataset: {len(resources):,} resources, {args.patients} patients")

    from adapters.storage.sqlite import SQLiteRepository

    with tempfile.TemporaryDirectory() as tmp:
        path = args.sqlite or os.path.join(tmp, "bench.db")
        baseline = baseline_sqlite(resources, os.path.join(tmp, "baseline.db"))
        repo = SQLiteRepository(f"sqlite:///{path}")
        rate = ingest(repo, resources, args.batch)  # no ANALYZE: the store needs no operator step
        report("sqlite", rate, baseline, measure_search(repo, args.patients, args.queries), len(resources))
        repo.close()

    if args.pg:
        from adapters.storage.postgresql import PostgreSQLRepository
        import psycopg

        schema = f"pb_bench_{os.getpid()}"
        baseline = baseline_pg(resources, args.pg, schema + "_bare")
        repo = PostgreSQLRepository(args.pg, schema=schema)
        try:
            rate = ingest(repo, resources, args.batch)
            report("postgresql", rate, baseline, measure_search(repo, args.patients, args.queries), len(resources))
        finally:
            repo.close()
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
