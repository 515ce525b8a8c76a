"""The patient record operations on a big record: one patient with 10,000 resources in SQLite.

    /work/venv/bin/python bench/bench_record.py [--resources 10000] [--visit-size 200] [--runs 40] [--db PATH]

Loads one patient's record (a realistic mix: encounters, lab and vital-sign Observations grouped by
DiagnosticReports, Conditions, AllergyIntolerances, MedicationRequests, Procedures, Immunizations,
Appointments, DocumentReferences, with the Practitioners, Locations and Organization they refer to),
with one inpatient stay of about `--visit-size` linked resources. Then, through the Flask app in-process
(the WSGI test client: routing, JSON, the whole handler; no sockets), measures p50/p99 over `--runs`
rounds of:

  baseline  GET Patient/{id}                         (a plain read)
  baseline  GET Observation?patient={id}             (a search, first page, default _count)
  GET Patient/{id}/$everything                       (first page, default _count)
  GET Patient/{id}/$everything?_offset=<last page>   (the last page)
  GET Encounter/{id}/$summary                        (the ~200-resource stay)
  GET Patient/{id}/$summary                          (the IPS over the whole record)

and prints each beside the baselines as ratios. Targets (2-core machine): $everything first page
<= 200 ms, visit summary <= 300 ms.
"""
from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.storage.base import BundleEntryRequest  # noqa: E402
from gateway.app import create_app  # noqa: E402
from gateway.fhir.context import REPOSITORY_KEY  # noqa: E402

FHIR = {"Accept": "application/fhir+json"}
LABS = [("2339-0", "Glucose", "mmol/L", 3, 15), ("2160-0", "Creatinine", "umol/L", 40, 200), ("718-7", "Hemoglobin", "g/dL", 8, 18),
        ("6690-2", "Leukocytes", "10*3/uL", 2, 20), ("777-3", "Platelets", "10*3/uL", 100, 450), ("2951-2", "Sodium", "mmol/L", 130, 150),
        ("2823-3", "Potassium", "mmol/L", 3, 6), ("2093-3", "Cholesterol", "mmol/L", 3, 8)]
VITALS = [("8867-4", "Heart rate", "/min", 50, 120), ("8480-6", "Systolic blood pressure", "mm[Hg]", 90, 180),
          ("8310-5", "Body temperature", "Cel", 35, 40), ("2708-6", "Oxygen saturation", "%", 85, 100)]
# Share of the record per kind (the rest are lab and vital-sign Observations and their reports).
MIX = {"Encounter": 0.012, "Condition": 0.015, "AllergyIntolerance": 0.001, "MedicationRequest": 0.12, "Procedure": 0.03,
       "Immunization": 0.004, "Appointment": 0.01, "DocumentReference": 0.03}


class Record:
    """Builds one patient's resources with deterministic ids and realistic references."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.resources: list[dict] = []
        self.patient = {"reference": "Patient/p1"}
        self.practitioners = [{"reference": f"Practitioner/dr{n}"} for n in range(20)]
        self.locations = [{"reference": f"Location/loc{n}"} for n in range(5)]
        self.counter = 0
        self.add({"resourceType": "Organization", "id": "org1", "name": "First People's Hospital"})
        self.add({"resourceType": "Patient", "id": "p1", "name": [{"family": "王", "given": ["小红"]}], "gender": "female",
                  "birthDate": "1956-03-07", "managingOrganization": {"reference": "Organization/org1"},
                  "identifier": [{"system": "urn:oid:2.16.840.1.113883.2.4.6.3", "value": "110101195603078524"}]})
        for n in range(20):
            self.add({"resourceType": "Practitioner", "id": f"dr{n}", "name": [{"family": f"Doctor{n}"}]})
        for n in range(5):
            self.add({"resourceType": "Location", "id": f"loc{n}", "name": f"Ward {n}"})

    def add(self, resource: dict) -> dict:
        self.resources.append(resource)
        return resource

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def when(self, day: int, minute: int = 0) -> str:
        return f"{2015 + day // 365:04d}-{1 + day % 365 // 31:02d}-{1 + day % 28:02d}T{8 + minute // 60 % 10:02d}:{minute % 60:02d}:00+08:00"

    def encounter(self, day: int, inpatient: bool) -> dict:
        return self.add({"resourceType": "Encounter", "id": self.new_id("enc"), "status": "finished",
                         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP" if inpatient else "AMB"},
                         "subject": self.patient, "period": {"start": self.when(day), "end": self.when(day + (5 if inpatient else 0), 30)},
                         "participant": [{"individual": self.rng.choice(self.practitioners)}],
                         "location": [{"location": self.rng.choice(self.locations)}],
                         "serviceProvider": {"reference": "Organization/org1"}})

    def panel(self, encounter: dict, day: int, tests: list[tuple], category: str, with_report: bool) -> int:
        refs = []
        for code, display, unit, low, high in tests:
            value = round(self.rng.uniform(low, high), 1)
            observation = self.add({
                "resourceType": "Observation", "id": self.new_id("obs"), "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
                "subject": self.patient, "encounter": {"reference": f"Encounter/{encounter['id']}"},
                "effectiveDateTime": self.when(day, self.rng.randrange(600)), "performer": [self.rng.choice(self.practitioners)],
                "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
                "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                                "code": "H" if value > (low + high) / 1.6 else "N"}]}]})
            refs.append({"reference": f"Observation/{observation['id']}"})
        if with_report:
            self.add({"resourceType": "DiagnosticReport", "id": self.new_id("dr"), "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8", "display": "Metabolic panel"}]},
                      "subject": self.patient, "encounter": {"reference": f"Encounter/{encounter['id']}"},
                      "effectiveDateTime": self.when(day), "result": refs})
        return len(refs) + int(with_report)

    def fact(self, kind: str, encounter: dict, day: int) -> None:
        enc = {"reference": f"Encounter/{encounter['id']}"}
        code = {"coding": [{"system": "http://snomed.info/sct", "code": str(100000 + self.rng.randrange(900)), "display": f"{kind} item"}]}
        base = {"resourceType": kind, "id": self.new_id(kind[:3].lower())}
        if kind == "Condition":
            self.add({**base, "code": code, "subject": self.patient, "encounter": enc, "recordedDate": self.when(day),
                      "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                     "code": self.rng.choice(["active", "resolved"])}]}})
        elif kind == "AllergyIntolerance":
            self.add({**base, "code": code, "patient": self.patient, "encounter": enc, "recordedDate": self.when(day)})
        elif kind == "MedicationRequest":
            self.add({**base, "status": "completed", "intent": "order", "medicationCodeableConcept": code, "subject": self.patient,
                      "encounter": enc, "authoredOn": self.when(day), "requester": self.rng.choice(self.practitioners),
                      "dosageInstruction": [{"text": "1 tablet twice daily"}]})
        elif kind == "Procedure":
            self.add({**base, "status": "completed", "code": code, "subject": self.patient, "encounter": enc,
                      "performedDateTime": self.when(day), "performer": [{"actor": self.rng.choice(self.practitioners)}]})
        elif kind == "Immunization":
            self.add({**base, "status": "completed", "vaccineCode": code, "patient": self.patient, "encounter": enc,
                      "occurrenceDateTime": self.when(day)})
        elif kind == "Appointment":
            self.add({**base, "status": "booked", "description": "Follow-up visit", "start": self.when(day + 14),
                      "end": self.when(day + 14, 30), "participant": [{"actor": self.patient, "status": "accepted"},
                                                                      {"actor": self.rng.choice(self.practitioners), "status": "accepted"}]})
        elif kind == "DocumentReference":
            self.add({**base, "status": "current", "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
                      "subject": self.patient, "author": [self.rng.choice(self.practitioners)], "date": self.when(day).replace("+08:00", "Z"),
                      "content": [{"attachment": {"contentType": "text/plain", "data": "UGF0aWVudCBzdGFibGUu"}}],
                      "context": {"encounter": [enc]}})


def build(total: int, visit_size: int, seed: int = 6) -> tuple[list[dict], str]:
    """`total` resources of one patient; returns them and the id of the inpatient stay of about `visit_size`."""
    record = Record(random.Random(seed))
    stay = record.encounter(3000, inpatient=True)
    made = 0
    kinds = list(MIX)
    while made < visit_size - 40:
        made += record.panel(stay, 3000 + made % 5, record.rng.sample(VITALS, 4), "vital-signs", with_report=False)
        made += record.panel(stay, 3000 + made % 5, record.rng.sample(LABS, 5), "laboratory", with_report=True)
    for n in range(40):
        record.fact(kinds[n % len(kinds)], stay, 3000 + n % 5)
    other_encounters = [record.encounter(day, inpatient=day % 7 == 0) for day in range(0, 2900, max(1, int(2900 / (total * MIX["Encounter"]))))]
    quotas = {kind: int(total * share) for kind, share in MIX.items() if kind != "Encounter"}
    for kind, quota in quotas.items():
        for n in range(quota):
            encounter = other_encounters[n % len(other_encounters)]
            record.fact(kind, encounter, n % 2900)
    day = 0
    while len(record.resources) < total:
        encounter = other_encounters[day % len(other_encounters)]
        if day % 3:
            record.panel(encounter, day % 2900, record.rng.sample(LABS, 6), "laboratory", with_report=True)
        else:
            record.panel(encounter, day % 2900, VITALS, "vital-signs", with_report=False)
        day += 1
    return record.resources[:total] if len(record.resources) > total else record.resources, stay["id"]


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed(call: Callable[[], object], runs: int) -> list[float]:
    call()  # warm: caches of parsed definitions and SQLite pages
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--visit-size", type=int, default=200)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--db", help="SQLite file (default: a temporary one)")
    args = parser.parse_args()
    path = args.db or str(Path(tempfile.mkdtemp()) / "record.db")
    app = create_app({"TESTING": True, "DB": f"sqlite:///{path}"})
    repository = app.extensions[REPOSITORY_KEY]
    resources, stay_id = build(args.resources, args.visit_size)
    started = time.perf_counter()
    for i in range(0, len(resources), 1000):
        repository.transaction([BundleEntryRequest("PUT", f"{r['resourceType']}/{r['id']}", r) for r in resources[i:i + 1000]])
    print(f"loaded {len(resources):,} resources of one patient in {time.perf_counter() - started:.1f} s (SQLite {path})")
    client = app.test_client()

    def get(url: str) -> Callable[[], object]:
        def call() -> object:
            response = client.get(url, headers=FHIR)
            assert response.status_code == 200, (url, response.status_code, response.get_data(as_text=True)[:300])
            return response.get_data()
        return call

    first = client.get("/fhir/Patient/p1/$everything", headers=FHIR).get_json()
    # A page past the end reads the whole record, so it knows the total and links the last page.
    probe = client.get(f"/fhir/Patient/p1/$everything?_offset={len(resources)}", headers=FHIR).get_json()
    last = urlsplit(next(link["url"] for link in probe["link"] if link["relation"] == "last"))
    last_url = f"{last.path}?{last.query}"
    visit = client.get(f"/fhir/Encounter/{stay_id}/$summary", headers=FHIR).get_json()
    in_visit = sum(len(section.get("entry", [])) for section in visit["entry"][0]["resource"]["section"])
    print(f"record total {probe.get('total')}, page size {len(first.get('entry', []))}; visit summary: {in_visit} section entries, "
          f"{len(visit['entry'])} Bundle entries; {args.runs} runs each, in-process Flask test client\n")
    cases = [
        ("baseline: Patient read", "/fhir/Patient/p1"),
        ("baseline: Observation?patient= page 1", "/fhir/Observation?patient=Patient/p1"),
        ("Patient/$everything page 1", "/fhir/Patient/p1/$everything"),
        ("Patient/$everything last page", last_url),
        ("Encounter/$summary (the stay)", f"/fhir/Encounter/{stay_id}/$summary"),
        ("Patient/$summary (IPS, whole record)", "/fhir/Patient/p1/$summary"),
    ]
    figures: dict[str, tuple[float, float]] = {}
    gc.collect()
    for label, url in cases:
        samples = timed(get(url), args.runs)
        figures[label] = (statistics.median(samples), percentile(samples, 99))
    read = figures["baseline: Patient read"][0]
    search = figures["baseline: Observation?patient= page 1"][0]
    print(f"{'request':40} {'p50 ms':>8} {'p99 ms':>8} {'x read':>8} {'x search':>9}")
    for label, (p50, p99) in figures.items():
        print(f"{label:40} {p50:8.1f} {p99:8.1f} {p50 / read:8.1f} {p50 / search:9.1f}")
    everything, summary = figures["Patient/$everything page 1"][0], figures["Encounter/$summary (the stay)"][0]
    print(f"\ntargets: $everything page 1 p50 {everything:.0f} ms <= 200 ms: {'met' if everything <= 200 else 'NOT met'}; "
          f"visit summary p50 {summary:.0f} ms <= 300 ms: {'met' if summary <= 300 else 'NOT met'}")
    repository.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
