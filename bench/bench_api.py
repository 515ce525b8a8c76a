"""Benchmark of the FHIR API over loopback: reads/s and Observation?patient=&code=&date= searches, p50/p99.

Not a test. Loads ~1,000 patients and ~200,000 resources through Repository.transaction (the
ingest path), starts the real `pulsebridge serve` process, and drives it with `wrk` when
installed (Debian package `wrk`) or else with a keep-alive multi-threaded Python client. A
trivial endpoint on the same server (/healthz) is measured in the same run as the baseline.
Beside requests/s, each scenario gives the CPU seconds the server's process tree spent per request
(Linux /proc; a PostgreSQL server's own processes are not counted): on a shared machine other work
moves requests/s by 2-3x between runs, CPU per request far less.

    /work/venv/bin/python bench/bench_api.py                       # SQLite, fresh data
    /work/venv/bin/python bench/bench_api.py --db postgresql://127.0.0.1:5432/test
    /work/venv/bin/python bench/bench_api.py --reuse --duration 5   # keep the loaded SQLite file
    /work/venv/bin/python bench/bench_api.py --audit both            # with and without the audit trail
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# LOINC vital-sign and lab codes the synthetic observations use.
CODES = ("8867-4", "8480-6", "8462-4", "8310-5", "9279-1", "29463-7", "2339-0", "718-7", "2160-0", "6690-2")
WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("PULSEBRIDGE_BENCH_PATHS")) do paths[#paths + 1] = line end
local counter = 0
setup = function(thread) counter = counter + 1; thread:set("seed", counter) end
init = function(args) math.randomseed(seed * 7919 + os.time()) end
request = function()
  return wrk.format("GET", paths[math.random(#paths)], {["Accept"] = "application/fhir+json"})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.stderr:write(string.format('{"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Measurement:
    scenario: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    server_cpu_ms: float | None = None  # CPU of the server's process tree per request (Linux /proc)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (gunicorn master, workers, the services process), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.parent.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending += children.get(current, [])
    return found


def cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU seconds used so far by these processes; None without /proc."""
    total = 0
    try:
        for pid in pids:
            with contextlib.suppress(FileNotFoundError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (proc(5)), in clock ticks
    except OSError:
        return None
    return total / os.sysconf("SC_CLK_TCK")


# --- data -------------------------------------------------------------------------------------


def patient_entries(n: int, per_patient: int, rng: random.Random) -> list[dict]:
    """One patient's transaction: the Patient, encounters, conditions and observations, with deterministic ids (PUT)."""
    pid = f"pat-{n:05d}"
    entries = [
        {
            "resourceType": "Patient",
            "id": pid,
            "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": f"MRN{n:07d}"}],
            "name": [{"family": rng.choice(("Chen", "Wang", "Li", "Smith", "García", "Müller")), "given": [f"P{n}"]}],
            "gender": rng.choice(("male", "female")),
            "birthDate": f"{rng.randint(1930, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        }
    ]
    encounters = max(1, per_patient // 20)
    conditions = max(1, per_patient // 40)
    for e in range(encounters):
        entries.append(
            {
                "resourceType": "Encounter",
                "id": f"enc-{n:05d}-{e}",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": {"reference": f"Patient/{pid}"},
                "period": {"start": f"2024-{e % 12 + 1:02d}-05T09:00:00+08:00", "end": f"2024-{e % 12 + 1:02d}-05T10:00:00+08:00"},
            }
        )
    for c in range(conditions):
        entries.append(
            {
                "resourceType": "Condition",
                "id": f"cond-{n:05d}-{c}",
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": rng.choice(("38341003", "44054006", "195967001"))}]},
                "subject": {"reference": f"Patient/{pid}"},
            }
        )
    for o in range(per_patient - len(entries)):
        day = rng.randint(0, 729)
        entries.append(
            {
                "resourceType": "Observation",
                "id": f"obs-{n:05d}-{o}",
                "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": CODES[o % len(CODES)]}]},
                "subject": {"reference": f"Patient/{pid}"},
                "encounter": {"reference": f"Encounter/enc-{n:05d}-{o % encounters}"},
                "effectiveDateTime": f"{2023 + day // 365}-{(day % 365) // 31 + 1:02d}-{(day % 31) % 28 + 1:02d}T08:{o % 60:02d}:00+08:00",
                "valueQuantity": {"value": round(rng.uniform(40, 180), 1), "unit": "1", "system": "http://unitsofmeasure.org", "code": "1"},
            }
        )
    return entries


def load(db: str, patients: int, per_patient: int) -> dict:
    """Load the dataset with one transaction per patient; returns counts and the ingest rate."""
    from adapters.storage import open_repository
    from adapters.storage.base import BundleEntryRequest

    rng = random.Random(20240301)
    repository = open_repository(db)
    total = 0
    started = time.perf_counter()
    try:
        for n in range(patients):
            entries = patient_entries(n, per_patient, rng)
            repository.transaction([BundleEntryRequest("PUT", f"{r['resourceType']}/{r['id']}", r) for r in entries])
            total += len(entries)
            if n % 100 == 99:
                rate = total / (time.perf_counter() - started)
                print(f"  loaded {n + 1} patients, {total} resources ({rate:,.0f}/s)", file=sys.stderr)
    finally:
        repository.close()
    seconds = time.perf_counter() - started
    return {"patients": patients, "resources": total, "seconds": round(seconds, 1), "resources_per_second": round(total / seconds)}


def analyze(db: str) -> None:
    """Gather query-planner statistics, as a DBA would after a bulk load; the store does not (yet) do it itself."""
    if db.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(db.removeprefix("sqlite:///")) as connection:
            connection.execute("ANALYZE")
    else:
        import psycopg

        with psycopg.connect(db, autocommit=True) as connection:
            connection.execute("ANALYZE")


# --- server -----------------------------------------------------------------------------------


def stored_resources(db: str) -> int | None:
    """Current resources in the store (SQLite and PostgreSQL), None when it cannot be counted."""
    if db.startswith("sqlite:///"):
        with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
            return conn.execute("SELECT count(*) FROM resources WHERE deleted = 0").fetchone()[0]
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db) as conn:
            return conn.execute("SELECT count(*) FROM resources WHERE deleted = 0").fetchone()[0]
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(db: str, port: int, workers: int | None, audit: bool = True, mllp: str = "off") -> subprocess.Popen:
    """`pulsebridge serve` on loopback, once its metadata answers; MLLP off unless `mllp` names HOST:PORT."""
    command = [sys.executable, "-m", "gateway", "serve", "--http", f"127.0.0.1:{port}", "--db", db, "--mllp", mllp]
    if workers:
        command += ["--workers", str(workers)]
    server = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PULSEBRIDGE_AUDIT": "on" if audit else "off"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/fhir/metadata")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("server did not start")


# --- load generators --------------------------------------------------------------------------


def run_wrk(port: int, scenario: str, paths: list[str], connections: int, seconds: float) -> Measurement:
    with tempfile.TemporaryDirectory() as scratch:
        script, listing = Path(scratch) / "paths.lua", Path(scratch) / "paths.txt"
        script.write_text(WRK_SCRIPT)
        listing.write_text("\n".join(paths) + "\n")
        completed = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script), f"http://127.0.0.1:{port}"],
            env={**os.environ, "PULSEBRIDGE_BENCH_PATHS": str(listing)},
            capture_output=True,
            text=True,
            check=True,
        )
    summary = json.loads(completed.stderr.strip().splitlines()[-1])
    return Measurement(
        scenario,
        summary["requests"],
        summary["duration_us"] / 1e6,
        summary["errors"] + summary["non2xx"],
        summary["p50_us"] / 1000,
        summary["p99_us"] / 1000,
    )


def run_python(port: int, scenario: str, paths: list[str], connections: int, seconds: float) -> Measurement:
    """Keep-alive HTTP/1.1 clients on threads; each records its own latencies."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    deadline = time.perf_counter() + seconds

    def client(slot: int) -> None:
        rng = random.Random(slot)
        connection = http.client.HTTPConnection("127.0.0.1", port)
        while (now := time.perf_counter()) < deadline:
            try:
                connection.request("GET", rng.choice(paths), headers={"Accept": "application/fhir+json"})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    errors[slot] += 1
            except (OSError, http.client.HTTPException):
                errors[slot] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port)
            latencies[slot].append(time.perf_counter() - now)
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    every = sorted(value for values in latencies for value in values)
    p99 = every[min(len(every) - 1, int(len(every) * 0.99))] if every else 0.0
    return Measurement(scenario, len(every), elapsed, sum(errors), statistics.median(every) * 1000 if every else 0.0, p99 * 1000)


# --- main -------------------------------------------------------------------------------------


def scenarios(patients: int, per_patient: int, rng: random.Random) -> dict[str, list[str]]:
    encounters = max(1, per_patient // 20)
    observations = per_patient - 1 - encounters - max(1, per_patient // 40)
    search = []
    for _ in range(2000):
        n = rng.randrange(patients)
        start = rng.randint(0, 17)
        begin = f"{2023 + start // 12}-{start % 12 + 1:02d}-01"
        end_month = start + 6
        end = f"{2023 + end_month // 12}-{end_month % 12 + 1:02d}-01"
        code = rng.choice(CODES)
        search.append(f"/fhir/Observation?patient=pat-{n:05d}&code=http://loinc.org%7C{code}&date=ge{begin}&date=lt{end}")
    return {
        "baseline /healthz": ["/healthz"],
        "read Patient": [f"/fhir/Patient/pat-{rng.randrange(patients):05d}" for _ in range(2000)],
        "read Observation": [f"/fhir/Observation/obs-{rng.randrange(patients):05d}-{rng.randrange(observations)}" for _ in range(2000)],
        "search Observation?patient&code&date": search,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="database URL (default: a SQLite file under the temp dir)")
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--per-patient", type=int, default=200, help="resources per patient, the Patient included")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, help="server worker processes (default: one per core)")
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded store (SQLite file or PostgreSQL)")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--analyze", action="store_true", help="run ANALYZE on the store before serving (planner statistics)")
    parser.add_argument("--audit", choices=("on", "off", "both"), default="on",
                        help="the server's audit trail (PULSEBRIDGE_AUDIT); both: one run without, then one with")
    args = parser.parse_args()

    db = args.db or f"sqlite:///{Path(tempfile.gettempdir()) / f'pulsebridge-bench-{args.patients}x{args.per_patient}.db'}"
    if db.startswith("sqlite:///") and not args.reuse:
        for suffix in ("", "-wal", "-shm"):
            Path(db.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    ingest = None
    wanted = args.patients * args.per_patient
    if not (args.reuse and (not db.startswith("sqlite:///") or Path(db.removeprefix("sqlite:///")).exists())
            and (stored_resources(db) or 0) >= wanted):
        print(f"loading {args.patients} patients x {args.per_patient} resources into {db}", file=sys.stderr)
        ingest = load(db, args.patients, args.per_patient)
        print(f"  ingest: {ingest}", file=sys.stderr)

    if args.analyze:
        analyze(db)
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk"))
    generator = run_wrk if use_wrk else run_python
    results: list[Measurement] = []
    for audit in {"on": (True,), "off": (False,), "both": (False, True)}[args.audit]:
        label = "" if args.audit != "both" else (" (audit on)" if audit else " (audit off)")
        port = free_port()
        server = start_server(db, port, args.workers, audit)
        try:
            for scenario, paths in scenarios(args.patients, args.per_patient, random.Random(7)).items():
                generator(port, scenario, paths, args.connections, 1.0)  # warm-up: caches, connections
                time.sleep(1.5)  # the audit writer's last batch of the warm-up is stored
                tree = process_tree(server.pid)
                before = cpu_seconds(tree)
                measured = generator(port, scenario, paths, args.connections, args.duration)
                time.sleep(1.5)  # ... and this scenario's, so its cost counts here
                after = cpu_seconds(tree)
                used = None if before is None or after is None or not measured.requests else 1000 * (after - before) / measured.requests
                results.append(replace(measured, scenario=scenario + label, server_cpu_ms=used))
                print(f"  {results[-1].scenario}: {results[-1].per_second:,.0f}/s", file=sys.stderr)
        finally:
            server.terminate()
            server.wait(timeout=20)

    baseline = results[0].per_second
    print(f"\nPulseBridge API benchmark: {db.split('://')[0]}{' (ANALYZE run)' if args.analyze else ''}, {os.cpu_count()} cores, "
          f"{'wrk' if use_wrk else 'Python keep-alive client'}, {args.connections} connections, {args.duration:.0f} s per scenario, "
          f"audit {args.audit}")
    if ingest:
        print(f"store ingest: {ingest['resources']:,} resources in {ingest['seconds']} s = {ingest['resources_per_second']:,}/s")
    print("\n| scenario | requests/s | vs baseline | p50 ms | p99 ms | errors | server CPU ms/request |\n"
          "|---|---:|---:|---:|---:|---:|---:|")
    for item in results:
        cpu = "-" if item.server_cpu_ms is None else f"{item.server_cpu_ms:.2f}"
        print(f"| {item.scenario} | {item.per_second:,.0f} | {item.per_second / baseline:.2f} | {item.p50_ms:.2f} | "
              f"{item.p99_ms:.2f} | {item.errors} | {cpu} |")
    if args.json:
        payload = {"db": db.split("://")[0], "generator": "wrk" if use_wrk else "python", "ingest": ingest,
                   "results": [{**asdict(item), "per_second": round(item.per_second)} for item in results]}
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
