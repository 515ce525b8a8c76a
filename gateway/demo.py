"""`pulsebridge serve --demo`: the bundled sample messages (gateway/samples/*.hl7) loaded before serving.

They go through the same Ingestor as MLLP, so a newcomer sees a real record at once: one
inpatient stay (admit A01, glucose and blood-pressure results ORU^R01, discharge A03) and a
follow-up appointment (SIU^S12) for the same patient. Loading again changes nothing: each sample
is then a resend (same MSH-3/4/10 and bytes) and is recognised as such (gateway.ingest).
"""
from __future__ import annotations

import sys
from importlib import resources
from typing import TYPE_CHECKING

from adapters.hl7v2.batch import split_messages

if TYPE_CHECKING:
    from gateway.ingest import IngestResult
    from gateway.serve import ServeOptions

SAMPLES = ("gateway", "samples")  # package data of `gateway` (setup.cfg package_data samples/*)


def sample_messages() -> list[tuple[str, bytes]]:
    """(file name, message bytes) of every bundled sample, in file-name order."""
    found: list[tuple[str, bytes]] = []
    files = sorted((f for f in resources.files(SAMPLES[0]).joinpath(SAMPLES[1]).iterdir() if f.name.endswith(".hl7")), key=lambda f: f.name)
    for file in files:
        for chunk in split_messages(file.read_bytes()):
            found.append((file.name, chunk.payload))
    return found


def load_samples(db: str) -> list[tuple[str, IngestResult]]:
    """Ingest every sample into the store at `db`; (file name, result) per message."""
    from adapters.storage import open_repository
    from gateway.ingest import Ingestor
    from gateway.settings import load_settings

    repository = open_repository(db)
    try:
        ingestor = Ingestor(repository, load_settings())
        return [(name, ingestor.ingest(raw, peer="demo", transport="file")) for name, raw in sample_messages()]
    finally:
        repository.close()


def demo_task(options: ServeOptions) -> None:
    """A `serve` start-up task: load the samples and say where to look."""
    results = load_samples(options.db)
    new = sum(result.status == "accepted" for _, result in results)
    again = sum(result.status == "duplicate" for _, result in results)
    for name, result in results:
        if result.status not in ("accepted", "duplicate"):
            print(f"demo: {name}: {result.ack_code} {result.error}", file=sys.stderr)
    print(
        f"demo: {len(results)} sample message(s) loaded ({new} new, {again} already stored); "
        f"try http://{options.http}/fhir/Patient and http://{options.http}/fhir/Observation",
        file=sys.stderr, flush=True,
    )

