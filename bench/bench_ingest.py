"""End-to-end HL7 v2 ingest over MLLP: messages acknowledged per second and ACK latency (issues 3 and 4).

Not a test. Starts the real `pulsebridge serve` on a fresh store (a SQLite file, or `--db
postgresql://...`), then `--senders` threads each send over their own MLLP connection, one message
at a time and waiting for its ACK. What they send is `--copies` copies of the corpus, each copy
made new: every MSH-10 gets a suffix of its own (corpus files reuse control ids) and the PID-3
identifiers a per-copy one (both with a tag of the run), so every copy creates its own patients, visits and results instead
of being recognised as a resend; MSH-15/16 are cleared (original mode), so that every message,
also one that asked for no acknowledgment (NE), is confirmed by its ACK once it is applied. Prints messages/s, the ACK codes, ACK latency p50/p99 and the resources
in the store afterwards per second, beside the same run's baseline: parse + convert of the same
messages in this process (the mapping alone, no store, no network).

    /work/venv/bin/python bench/bench_ingest.py                      # SQLite, 5 copies, 2 senders
    /work/venv/bin/python bench/bench_ingest.py --db postgresql://127.0.0.1:5432/test --copies 3
"""
from __future__ import annotations

import argparse
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from adapters.hl7v2 import parse  # noqa: E402
from adapters.hl7v2.batch import split_messages  # noqa: E402
from adapters.hl7v2.mllp_client import MLLPClient  # noqa: E402
from bench_api import free_port, start_server, stored_resources  # noqa: E402
from mappers import convert_message  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "ms-fhir-converter" / "hl7v2"


def corpus_messages(folder: Path) -> list[bytes]:
    """Every message of every corpus file, as sent (CR-separated segments)."""
    messages: list[bytes] = []
    for path in sorted(folder.glob("*.hl7")):
        messages += [chunk.payload for chunk in split_messages(path.read_bytes())]
    return messages


def renewed(message: bytes, copy: str, number: int) -> bytes:
    """The message as a new one in original acknowledgment mode: MSH-10 suffixed `-<copy>-<number>`,
    every PID-3 identifier value `-<copy>`, MSH-15/MSH-16 emptied."""
    text = message.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    sep = text[3:4]
    repetition = text[5:6] if len(text) > 5 else b"~"
    component = text[4:5] if len(text) > 4 else b"^"
    suffix = f"-{copy}".encode()
    control_suffix = f"-{copy}-{number}".encode()
    segments = text.split(b"\r")
    for i, segment in enumerate(segments):
        fields = segment.split(sep)
        if fields[0] == b"MSH" and len(fields) > 9:
            fields[9] += control_suffix  # MSH-10: fields[0] is "MSH", fields[1] MSH-2 (MSH-1 is the separator)
            for accept_or_application in (14, 15):  # MSH-15, MSH-16
                if len(fields) > accept_or_application:
                    fields[accept_or_application] = b""
        elif fields[0] == b"PID" and len(fields) > 3 and fields[3]:
            fields[3] = repetition.join(
                component.join([parts[0] + suffix, *parts[1:]]) if parts[0] else component.join(parts)
                for parts in (rep.split(component) for rep in fields[3].split(repetition))
            )
        segments[i] = sep.join(fields)
    return b"\r".join(segments)


def convert_rate(messages: list[bytes]) -> tuple[float, int]:
    """Messages per CPU second of parse + convert in this process, and the resources they make."""
    for message in messages[:50]:
        convert_message(parse(message))
    made = 0
    started = time.process_time()
    for message in messages:
        bundle, _ = convert_message(parse(message))
        made += len(bundle.get("entry", ()))
    return len(messages) / (time.process_time() - started), made


def send_all(port: int, messages: list[bytes], senders: int) -> tuple[float, list[float], dict[str, int]]:
    """Send every message, `senders` connections at once; (seconds, ACK latencies, count per MSA-1 code)."""
    work: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    for message in messages:
        work.put(message)
    for _ in range(senders):
        work.put(None)
    latencies: list[float] = []
    codes: dict[str, int] = {}
    lock = threading.Lock()

    def sender() -> None:
        with MLLPClient("127.0.0.1", port, timeout=120) as client:
            while (message := work.get()) is not None:
                started = time.perf_counter()
                ack = client.send(message)
                took = time.perf_counter() - started
                code = next((line.split(ack[3:4])[1].decode() for line in ack.split(b"\r") if line.startswith(b"MSA")), "?")
                with lock:
                    latencies.append(took)
                    codes[code] = codes.get(code, 0) + 1

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file under the temp dir)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--copies", type=int, default=5, help="copies of the corpus to send, each made new")
    parser.add_argument("--senders", type=int, default=2, help="MLLP connections sending at once")
    parser.add_argument("--workers", type=int, help="server worker processes (default: one per core)")
    parser.add_argument("--audit", choices=("on", "off"), default="on")
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="pulsebridge-ingest-")
    db = args.db or f"sqlite:///{Path(scratch) / 'ingest.db'}"
    corpus = corpus_messages(args.corpus)
    run = uuid.uuid4().hex[:6]  # a store kept from an earlier run must not see these as resends
    messages = [renewed(message, f"{run}{copy}", number) for copy in range(args.copies) for number, message in enumerate(corpus)]
    baseline, made = convert_rate(messages[: len(corpus)])
    http_port, mllp_port = free_port(), free_port()
    os.environ["PULSEBRIDGE_AUDIT"] = args.audit
    server = start_server(db, http_port, args.workers, args.audit == "on", mllp=f"127.0.0.1:{mllp_port}")
    try:
        before = stored_resources(db) or 0
        seconds, latencies, codes = send_all(mllp_port, messages, args.senders)
        after = stored_resources(db)
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies.sort()
    rate = len(messages) / seconds
    print(f"\nPulseBridge MLLP ingest: {db.split('://')[0]}, {os.cpu_count()} cores, {args.senders} senders, "
          f"{len(messages)} messages ({args.copies} copies of {len(corpus)}), audit {args.audit}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("\n| figure | value |\n|---|---:|")
    print(f"| messages acknowledged/s | {rate:,.0f} |")
    print(f"| ACK codes | {', '.join(f'{code} {count}' for code, count in sorted(codes.items()))} |")
    print(f"| ACK latency p50 / p99 ms | {1000 * statistics.median(latencies):.1f} / "
          f"{1000 * latencies[int(0.99 * (len(latencies) - 1))]:.1f} |")
    if after is not None:
        print(f"| resources stored/s | {(after - before) / seconds:,.0f} ({after - before:,} in {seconds:.1f} s) |")
    print(f"| baseline: parse + convert in process, messages per CPU s | {baseline:,.0f} "
          f"({made / len(corpus):.1f} resources/message); ingest is {rate / baseline:.2f}x of it |")


if __name__ == "__main__":
    main()
