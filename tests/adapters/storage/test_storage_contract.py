"""One contract for every backend (memory, SQLite, PostgreSQL): R4 http.html interactions and search.html."""
from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from adapters.storage.base import (
    BundleEntryRequest,
    Gone,
    InvalidResource,
    InvalidSearch,
    NotFound,
    PreconditionFailed,
    Repository,
    SearchResult,
    TransientConflict,
    VersionConflict,
    WriteOutcome,
)
from adapters.storage.memory import MemoryRepository
from adapters.storage.query import parse_search

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def ids(result: SearchResult) -> list[str]:
    return [m["id"] for m in result.matches]


def search(repo: Repository, resource_type: str, *pairs: tuple[str, str]) -> SearchResult:
    return repo.search(parse_search(resource_type, list(pairs)))


@pytest.fixture
def world(repo: Repository, samples: dict[str, dict]) -> dict[str, str]:
    """Patients, an organization, an encounter and observations linked as a hospital would send them."""
    made: dict[str, str] = {}
    repo.update(samples["org_charite"])
    made["org"] = "org-charite"
    for name in ("patient_mueller", "patient_zhang", "patient_garcia"):
        made[name] = repo.create(samples[name]).version.id
    encounter = {**samples["encounter"], "subject": {"reference": f"Patient/{made['patient_mueller']}"}}
    made["encounter"] = repo.create(encounter).version.id
    hr = {**samples["heart_rate"], "subject": {"reference": f"Patient/{made['patient_mueller']}"},
          "encounter": {"reference": f"Encounter/{made['encounter']}"}}
    made["heart_rate"] = repo.create(hr).version.id
    glucose = {**samples["glucose"], "subject": {"reference": f"Patient/{made['patient_zhang']}"}}
    made["glucose"] = repo.create(glucose).version.id
    return made


# -- create / read / update / delete -------------------------------------------------------------


def test_create_assigns_id_and_stamps_meta(repo: Repository, samples: dict) -> None:
    outcome = repo.create({**samples["patient_mueller"], "id": "client-chosen"})
    version = outcome.version
    assert outcome.created and outcome.changed
    assert version.id != "client-chosen" and version.version_id == 1 and version.method == "POST"
    assert version.resource["meta"]["versionId"] == "1"
    assert INSTANT.match(version.resource["meta"]["lastUpdated"])
    assert version.last_updated.tzinfo is not None
    read = repo.read("Patient", version.id)
    assert read.resource == version.resource
    assert read.resource["name"][0]["family"] == "Müller"


def test_read_unknown_is_not_found(repo: Repository) -> None:
    with pytest.raises(NotFound) as err:
        repo.read("Patient", "nope")
    assert err.value.http_status == 404
    with pytest.raises(NotFound):
        repo.vread("Patient", "nope", 1)


def test_update_as_create_then_versions(repo: Repository, samples: dict) -> None:
    org = samples["org_charite"]
    first = repo.update(org)
    assert first.created and first.version.version_id == 1
    second = repo.update({**org, "name": "Charité Berlin"})
    assert not second.created and second.version.version_id == 2
    assert second.version.resource["meta"]["versionId"] == "2"
    assert repo.vread("Organization", "org-charite", 1).resource["name"] == "Charité Universitätsmedizin"
    assert repo.vread("Organization", "org-charite", 2).resource["name"] == "Charité Berlin"
    assert repo.read("Organization", "org-charite").version_id == 2
    with pytest.raises(NotFound):
        repo.vread("Organization", "org-charite", 3)


def test_identical_update_makes_no_new_version(repo: Repository, samples: dict) -> None:
    first = repo.update(samples["org_charite"]).version
    again = repo.update({**first.resource, "meta": {"versionId": "9", "lastUpdated": "2000-01-01T00:00:00Z"}})
    assert again.changed is False and again.created is False
    assert again.version.version_id == 1
    assert repo.history("Organization", "org-charite")[0] == 1


def test_if_match(repo: Repository, samples: dict) -> None:
    repo.update(samples["org_charite"])
    with pytest.raises(VersionConflict) as err:
        repo.update({**samples["org_charite"], "name": "x"}, if_match=2)
    assert err.value.http_status == 412
    assert repo.update({**samples["org_charite"], "name": "x"}, if_match=1).version.version_id == 2
    assert repo.update({**samples["org_charite"], "name": "y"}, if_match='W/"2"').version.version_id == 3  # type: ignore[arg-type]
    with pytest.raises(VersionConflict):
        repo.update({**samples["org_charite"], "id": "new-one"}, if_match=1)


def test_update_without_id_is_refused(repo: Repository, samples: dict) -> None:
    with pytest.raises(InvalidResource):
        repo.update(samples["patient_zhang"])


def test_delete_then_gone_then_recreate(repo: Repository, samples: dict) -> None:
    repo.update(samples["org_charite"])
    marker = repo.delete("Organization", "org-charite")
    assert marker is not None and marker.deleted and marker.version_id == 2 and marker.method == "DELETE"
    with pytest.raises(Gone) as err:
        repo.read("Organization", "org-charite")
    assert err.value.http_status == 410
    assert repo.delete("Organization", "org-charite") is None
    assert repo.delete("Organization", "never-there") is None
    assert repo.vread("Organization", "org-charite", 1).resource["name"] == "Charité Universitätsmedizin"
    again = repo.update(samples["org_charite"])
    assert again.created and again.version.version_id == 3
    total, versions = repo.history("Organization", "org-charite")
    assert total == 3 and [v.version_id for v in versions] == [3, 2, 1]
    assert versions[1].resource is None


def test_deleted_resources_are_not_found_by_search(repo: Repository, world: dict) -> None:
    assert search(repo, "Observation", ("code", "8867-4")).total == 1
    repo.delete("Observation", world["heart_rate"])
    assert search(repo, "Observation", ("code", "8867-4")).total == 0


# -- conditional create ----------------------------------------------------------------------------


def test_conditional_create(repo: Repository, samples: dict) -> None:
    condition = parse_search("Patient", [("identifier", "urn:oid:1.2.36.146.595.217.0.1|MRN-1001")])
    first = repo.create(samples["patient_mueller"], if_none_exist=condition)
    assert first.created
    second = repo.create(samples["patient_mueller"], if_none_exist=condition)
    assert not second.created and second.changed is False and second.version.id == first.version.id
    repo.create(samples["patient_garcia"])
    with pytest.raises(PreconditionFailed) as err:
        repo.create(samples["patient_mueller"], if_none_exist=parse_search("Patient", [("identifier", "urn:oid:1.2.36.146.595.217.0.1|")]))
    assert err.value.http_status == 412


# -- history ---------------------------------------------------------------------------------------


def test_history_levels_newest_first(repo: Repository, samples: dict) -> None:
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    repo.update(samples["org_charite"])
    patient = repo.create(samples["patient_zhang"]).version
    repo.update({**samples["org_charite"], "name": "v2"})
    repo.delete("Patient", patient.id)
    total, page = repo.history()
    assert total == 4
    assert [(v.resource_type, v.version_id) for v in page] == [
        ("Patient", 2), ("Organization", 2), ("Patient", 1), ("Organization", 1)
    ]
    assert repo.history("Organization")[0] == 2
    total, page = repo.history("Patient", patient.id)
    assert total == 2 and page[0].deleted
    total, page = repo.history(count=2, offset=1)
    assert total == 4 and [v.version_id for v in page] == [2, 1]
    assert repo.history(since=before)[0] == 4
    assert repo.history(since=datetime.now(timezone.utc) + timedelta(hours=1))[0] == 0


# -- transaction -----------------------------------------------------------------------------------


def test_transaction_resolves_urn_uuid_and_orders_results(repo: Repository, samples: dict) -> None:
    repo.update(samples["org_charite"])
    old = repo.create(samples["patient_garcia"]).version
    entries = [
        BundleEntryRequest("POST", "Observation", {
            **samples["heart_rate"], "subject": {"reference": "urn:uuid:7f8f4a1e-0000-4000-8000-000000000001"},
            "hasMember": [{"reference": "urn:uuid:7f8f4a1e-0000-4000-8000-000000000003"}],
        }, full_url="urn:uuid:7f8f4a1e-0000-4000-8000-000000000002"),
        BundleEntryRequest("POST", "Patient", samples["patient_mueller"], full_url="urn:uuid:7f8f4a1e-0000-4000-8000-000000000001"),
        BundleEntryRequest("POST", "Observation", samples["glucose"], full_url="urn:uuid:7f8f4a1e-0000-4000-8000-000000000003"),
        BundleEntryRequest("PUT", "Organization/org-charite", {**samples["org_charite"], "name": "Charité (new)"}),
        BundleEntryRequest("DELETE", f"Patient/{old.id}"),
        BundleEntryRequest("GET", "Organization/org-charite"),
        BundleEntryRequest("GET", "Patient?family=muller"),
    ]
    results = repo.transaction(entries)
    hr, patient, glucose, org, deleted, got, found = results
    assert isinstance(hr, WriteOutcome) and isinstance(patient, WriteOutcome) and isinstance(glucose, WriteOutcome)
    assert hr.version.resource["subject"] == {"reference": f"Patient/{patient.version.id}"}
    assert hr.version.resource["hasMember"] == [{"reference": f"Observation/{glucose.version.id}"}]
    assert isinstance(org, WriteOutcome) and org.version.version_id == 2
    assert deleted is not None and deleted.deleted
    assert got.resource["name"] == "Charité (new)"  # GET runs after the writes (bundle.html#transaction)
    assert isinstance(found, SearchResult) and found.total == 1
    assert search(repo, "Observation", ("patient", patient.version.id)).total == 1
    with pytest.raises(Gone):
        repo.read("Patient", old.id)


def test_transaction_is_all_or_nothing(repo: Repository, samples: dict) -> None:
    repo.update(samples["org_charite"])
    entries = [
        BundleEntryRequest("POST", "Patient", samples["patient_mueller"], full_url="urn:uuid:a"),
        BundleEntryRequest("PUT", "Organization/org-charite", {**samples["org_charite"], "name": "changed"}, if_match='W/"7"'),
    ]
    with pytest.raises(VersionConflict):
        repo.transaction(entries)
    assert search(repo, "Patient").total == 0
    assert repo.read("Organization", "org-charite").version_id == 1
    assert repo.history()[0] == 1
    with pytest.raises(NotFound):
        repo.transaction([BundleEntryRequest("POST", "Patient", samples["patient_zhang"]),
                          BundleEntryRequest("GET", "Patient/missing")])
    assert search(repo, "Patient").total == 0


def test_transaction_conditional_entries(repo: Repository, samples: dict) -> None:
    existing = repo.create(samples["patient_mueller"]).version
    mrn = "urn:oid:1.2.36.146.595.217.0.1|MRN-1001"
    results = repo.transaction([
        BundleEntryRequest("POST", "Patient", samples["patient_mueller"], full_url="urn:uuid:p", if_none_exist=f"identifier={mrn}"),
        BundleEntryRequest("POST", "Observation", {**samples["heart_rate"], "subject": {"reference": "urn:uuid:p"}}),
        BundleEntryRequest("PUT", f"Patient?identifier={mrn}", {**samples["patient_mueller"], "gender": "other"}),
        BundleEntryRequest("POST", "Encounter", {**samples["encounter"], "subject": {"reference": f"Patient?identifier={mrn}"}}),
    ])
    assert results[0].created is False and results[0].version.id == existing.id
    assert results[1].version.resource["subject"]["reference"] == f"Patient/{existing.id}"
    assert results[2].version.id == existing.id and results[2].version.version_id == 2
    assert results[3].version.resource["subject"]["reference"] == f"Patient/{existing.id}"
    assert search(repo, "Patient").total == 1
    with pytest.raises(PreconditionFailed):
        repo.transaction([BundleEntryRequest("POST", "Encounter", {**samples["encounter"], "subject": {"reference": "Patient?identifier=none"}})])


def test_transaction_conditional_delete_and_vread(repo: Repository, samples: dict) -> None:
    patient = repo.create(samples["patient_zhang"]).version
    results = repo.transaction([
        BundleEntryRequest("DELETE", "Patient?identifier=urn:oid:2.16.156.10011.1.1|11010519491231002X"),
        BundleEntryRequest("GET", f"Patient/{patient.id}/_history/1"),
    ])
    assert results[0].deleted and results[1].resource["name"][0]["text"] == "张伟"
    with pytest.raises(Gone):
        repo.read("Patient", patient.id)


# -- search: strings -------------------------------------------------------------------------------


def test_string_default_is_prefix_case_and_accent_insensitive(repo: Repository, world: dict) -> None:
    assert ids(search(repo, "Patient", ("family", "MULL"))) == [world["patient_mueller"]]
    assert ids(search(repo, "Patient", ("name", "garcia"))) == [world["patient_garcia"]]
    assert ids(search(repo, "Patient", ("name", "maria jo"))) == [world["patient_garcia"]]
    assert ids(search(repo, "Patient", ("name", "张"))) == [world["patient_zhang"]]
    assert ids(search(repo, "Patient", ("address-city", "berl"))) == [world["patient_mueller"]]
    assert search(repo, "Patient", ("family", "ller")).total == 0


def test_string_exact_and_contains(repo: Repository, world: dict) -> None:
    assert ids(search(repo, "Patient", ("family:exact", "Müller"))) == [world["patient_mueller"]]
    assert search(repo, "Patient", ("family:exact", "müller")).total == 0
    assert ids(search(repo, "Patient", ("family:contains", "ULL"))) == [world["patient_mueller"]]
    assert ids(search(repo, "Organization", ("name:contains", "universitats"))) == ["org-charite"]


# -- search: tokens --------------------------------------------------------------------------------


def test_token_forms(repo: Repository, world: dict) -> None:
    assert ids(search(repo, "Observation", ("code", "http://loinc.org|8867-4"))) == [world["heart_rate"]]
    assert ids(search(repo, "Observation", ("code", "8867-4"))) == [world["heart_rate"]]
    assert search(repo, "Observation", ("code", "http://snomed.info/sct|8867-4")).total == 0
    assert search(repo, "Observation", ("code", "http://loinc.org|")).total == 2
    assert ids(search(repo, "Patient", ("gender", "|female"))) == [world["patient_garcia"]]
    assert ids(search(repo, "Patient", ("identifier", "MRN-1002"))) == [world["patient_garcia"]]
    assert ids(search(repo, "Patient", ("active", "false"))) == [world["patient_zhang"]]
    assert ids(search(repo, "Patient", ("email", "hans@example.org"))) == [world["patient_mueller"]]
    assert search(repo, "Patient", ("phone", "hans@example.org")).total == 0
    assert search(repo, "Observation", ("code", "8867-4,2339-0")).total == 2


def test_token_not_text_missing(repo: Repository, world: dict) -> None:
    assert ids(search(repo, "Observation", ("code:not", "8867-4"))) == [world["glucose"]]
    assert sorted(ids(search(repo, "Patient", ("gender:not", "female")))) == sorted(
        [world["patient_mueller"], world["patient_zhang"]]
    )
    assert ids(search(repo, "Observation", ("code:text", "heart"))) == [world["heart_rate"]]
    assert ids(search(repo, "Observation", ("code:text", "pulse"))) == [world["heart_rate"]]
    assert ids(search(repo, "Patient", ("identifier:text", "medical"))) == [world["patient_mueller"]]
    assert ids(search(repo, "Patient", ("active:missing", "true"))) == [world["patient_garcia"]]
    assert search(repo, "Patient", ("active:missing", "false")).total == 2
    assert ids(search(repo, "Observation", ("encounter:missing", "true"))) == [world["glucose"]]


def test_id_and_multiple_values(repo: Repository, world: dict) -> None:
    wanted = sorted([world["patient_zhang"], world["patient_garcia"]])
    assert sorted(ids(search(repo, "Patient", ("_id", ",".join(wanted))))) == wanted
    assert search(repo, "Patient", ("_id", world["patient_zhang"]), ("gender", "female")).total == 0


# -- search: dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "heart_rate", "glucose"),
    [
        ("2024-03-05", True, False),  # 10:00+08:00 is 02:00Z on the 5th
        ("2024-03", True, True),
        ("2024", True, True),
        ("2024-03-05T02:00:00Z", True, False),
        ("2024-03-05T10:00:00+08:00", True, False),
        ("gt2024-03-05", False, True),
        ("lt2024-03-06", True, False),
        ("ge2024-03-06", False, True),
        ("le2024-03-05", True, False),
        ("sa2024-03-05", False, True),
        ("eb2024-03-06", True, False),
        ("ne2024-03-05", False, True),
        ("eq2024-03-06T08:30:00Z", False, False),  # the period is wider than the second
        ("2023", False, False),
    ],
)
def test_date_prefixes_and_precision(repo: Repository, world: dict, value: str, heart_rate: bool, glucose: bool) -> None:
    found = set(ids(search(repo, "Observation", ("date", value))))
    assert (world["heart_rate"] in found, world["glucose"] in found) == (heart_rate, glucose)


def test_date_on_periods_and_birthdates(repo: Repository, world: dict) -> None:
    assert ids(search(repo, "Encounter", ("date", "ge2024-03-01"), ("date", "le2024-03-07"))) == [world["encounter"]]
    assert search(repo, "Encounter", ("date", "2024-03-04")).total == 0  # day does not contain the whole stay
    assert ids(search(repo, "Encounter", ("date", "2024-03"))) == [world["encounter"]]
    assert ids(search(repo, "Patient", ("birthdate", "1985-06-01"))) == []  # the year 1985 is wider than the day
    assert ids(search(repo, "Patient", ("birthdate", "1985"))) == [world["patient_garcia"]]
    assert ids(search(repo, "Patient", ("birthdate", "lt1950"))) == [world["patient_zhang"]]


def test_last_updated(repo: Repository, world: dict) -> None:
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert search(repo, "Patient", ("_lastUpdated", f"ge{today}")).total == 3
    assert search(repo, "Patient", ("_lastUpdated", "lt2000-01-01")).total == 0
    stamp = repo.read("Patient", world["patient_zhang"]).resource["meta"]["lastUpdated"]  # millisecond precision
    assert world["patient_zhang"] in ids(search(repo, "Patient", ("_lastUpdated", stamp)))
    assert world["patient_zhang"] not in ids(search(repo, "Patient", ("_lastUpdated", f"ne{stamp}")))
    assert world["patient_zhang"] not in ids(search(repo, "Patient", ("_lastUpdated", f"gt{stamp}")))
    assert world["patient_zhang"] in ids(search(repo, "Patient", ("_lastUpdated", f"le{stamp}")))
    assert search(repo, "Patient", ("_lastUpdated:missing", "true")).total == 0
    assert search(repo, "Patient", ("_lastUpdated:missing", "false")).total == 3
    assert ids(search(repo, "Patient", ("family", "MULL"), ("_lastUpdated", f"ge{today}"))) == [world["patient_mueller"]]


def test_a_narrowed_reference_reads_only_its_target_type(repo: Repository, world: dict) -> None:
    """patient = subject.where(resolve() is Patient): answered from subject rows of type Patient."""
    device = repo.create({"resourceType": "Device", "status": "active"}).version.id
    on_device = repo.create({"resourceType": "Observation", "status": "final", "code": {"text": "device reading"},
                            "subject": {"reference": f"Device/{device}"}}).version.id
    assert ids(search(repo, "Observation", ("subject", f"Device/{device}"))) == [on_device]
    assert search(repo, "Observation", ("patient", device)).total == 0
    assert on_device not in ids(search(repo, "Observation", ("patient:missing", "false")))
    assert on_device in ids(search(repo, "Observation", ("patient:missing", "true")))
    included = search(repo, "Observation", ("_id", on_device), ("_include", "Observation:patient"))
    assert included.included == []
    assert [r["id"] for r in search(repo, "Observation", ("_id", on_device), ("_include", "Observation:subject")).included] == [device]
    assert search(repo, "Device", ("_id", device), ("_revinclude", "Observation:patient")).included == []
    assert ids(search(repo, "Observation", ("_id", on_device))) == [on_device]
    revincluded = search(repo, "Device", ("_id", device), ("_revinclude", "Observation:subject")).included
    assert [r["id"] for r in revincluded] == [on_device]


# -- search: quantities, uris, references ----------------------------------------------------------


def test_quantity(repo: Repository, world: dict) -> None:
    assert ids(search(repo, "Observation", ("value-quantity", "72"))) == [world["heart_rate"]]
    assert ids(search(repo, "Observation", ("value-quantity", "5.4|http://unitsofmeasure.org|mmol/L"))) == [world["glucose"]]
    assert ids(search(repo, "Observation", ("value-quantity", "5.40"))) == [world["glucose"]]  # 5.395 <= 5.4 < 5.405
    assert search(repo, "Observation", ("value-quantity", "5.41")).total == 0
    assert ids(search(repo, "Observation", ("value-quantity", "5"))) == [world["glucose"]]  # 4.5 <= 5.4 < 5.5
    assert ids(search(repo, "Observation", ("value-quantity", "gt10||/min"))) == [world["heart_rate"]]
    assert ids(search(repo, "Observation", ("value-quantity", "lt10"))) == [world["glucose"]]
    assert ids(search(repo, "Observation", ("value-quantity", "ge72||beats/minute"))) == [world["heart_rate"]]
    assert search(repo, "Observation", ("value-quantity", "72||mmol/L")).total == 0


def test_uri(repo: Repository, samples: dict) -> None:
    profile = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
    made = repo.create({**samples["heart_rate"], "meta": {"profile": [profile], "source": "http://lis.example.org/lab"}})
    repo.create(samples["glucose"])
    assert ids(search(repo, "Observation", ("_profile", profile))) == [made.version.id]
    assert ids(search(repo, "Observation", ("_source:below", "http://lis.example.org"))) == [made.version.id]
    assert ids(search(repo, "Observation", ("_source:above", "http://lis.example.org/lab/sub"))) == [made.version.id]
    assert search(repo, "Observation", ("_profile", "http://hl7.org/fhir/StructureDefinition")).total == 0


def test_reference_forms(repo: Repository, world: dict) -> None:
    pid = world["patient_mueller"]
    for pair in [("subject", f"Patient/{pid}"), ("patient", pid), ("subject:Patient", pid),
                 ("subject", f"https://fhir.example.org/fhir/Patient/{pid}")]:
        assert ids(search(repo, "Observation", pair)) == [world["heart_rate"]], pair
    assert search(repo, "Observation", ("subject:Location", pid)).total == 0
    with pytest.raises(InvalidSearch):
        search(repo, "Observation", ("subject:Group", pid))  # Group is not a supported type here
    assert ids(search(repo, "Patient", ("organization", "org-charite"))) == [pid]


def test_chained_parameters(repo: Repository, world: dict) -> None:
    assert ids(search(repo, "Observation", ("subject:Patient.identifier", "MRN-1001"))) == [world["heart_rate"]]
    assert ids(search(repo, "Observation", ("patient.name", "张"))) == [world["glucose"]]
    assert ids(search(repo, "Observation", ("patient.organization.name", "charite"))) == [world["heart_rate"]]
    assert ids(search(repo, "Observation", ("encounter.date", "ge2024-03-01"))) == [world["heart_rate"]]
    assert search(repo, "Observation", ("patient.name", "nobody")).total == 0


# -- search: sort, paging, summary, elements, include ----------------------------------------------


def test_sort(repo: Repository, world: dict) -> None:
    by_birth = ids(search(repo, "Patient", ("_sort", "birthdate")))
    assert by_birth == [world["patient_zhang"], world["patient_mueller"], world["patient_garcia"]]
    assert ids(search(repo, "Patient", ("_sort", "-birthdate"))) == by_birth[::-1]
    assert ids(search(repo, "Observation", ("_sort", "-date"))) == [world["glucose"], world["heart_rate"]]
    assert ids(search(repo, "Patient", ("_sort", "family,given")))[0] == world["patient_garcia"]
    stamps = [m["meta"]["lastUpdated"] for m in search(repo, "Patient", ("_sort", "-_lastUpdated")).matches]
    assert stamps == sorted(stamps, reverse=True) and len(stamps) == 3
    by_active = ids(search(repo, "Patient", ("_sort", "active")))
    assert by_active[-1] == world["patient_garcia"]  # no value sorts last


def test_paging_total_and_summary(repo: Repository, world: dict) -> None:
    everyone = ids(search(repo, "Patient", ("_sort", "_id")))
    page1 = search(repo, "Patient", ("_sort", "_id"), ("_count", "2"))
    page2 = search(repo, "Patient", ("_sort", "_id"), ("_count", "2"), ("_offset", "2"))
    assert page1.total == page2.total == 3
    assert ids(page1) + ids(page2) == everyone
    assert search(repo, "Patient", ("_total", "none")).total is None
    counted = search(repo, "Patient", ("_summary", "count"))
    assert counted.total == 3 and counted.matches == []
    summary = search(repo, "Patient", ("_id", world["patient_mueller"]), ("_summary", "true")).matches[0]
    assert "name" in summary and "birthDate" in summary and "telecom" in summary
    assert "SUBSETTED" in [t["code"] for t in summary["meta"]["tag"]]
    obs = search(repo, "Observation", ("_id", world["heart_rate"]), ("_elements", "status,value[x]")).matches[0]
    assert set(obs) == {"resourceType", "id", "meta", "status", "valueQuantity"}


def test_include_revinclude_iterate(repo: Repository, world: dict) -> None:
    result = search(repo, "Observation", ("code", "8867-4"), ("_include", "Observation:patient"))
    assert [r["id"] for r in result.included] == [world["patient_mueller"]]
    result = search(repo, "Observation", ("code", "8867-4"), ("_include", "Observation:*"))
    assert sorted(r["resourceType"] for r in result.included) == ["Encounter", "Patient"]
    result = search(repo, "Patient", ("_id", world["patient_mueller"]), ("_revinclude", "Observation:subject"))
    assert [r["id"] for r in result.included] == [world["heart_rate"]]
    result = search(repo, "Observation", ("code", "8867-4"), ("_include", "Observation:patient"),
                    ("_include:iterate", "Patient:organization"))
    assert sorted(r["id"] for r in result.included) == sorted([world["patient_mueller"], "org-charite"])
    result = search(repo, "Observation", ("code", "8867-4"), ("_include", "Observation:patient"),
                    ("_include", "Patient:organization"))
    assert [r["id"] for r in result.included] == [world["patient_mueller"]]  # no :iterate, no second hop
    repo.delete("Patient", world["patient_mueller"])
    assert search(repo, "Observation", ("code", "8867-4"), ("_include", "Observation:patient")).included == []


# -- concurrency -----------------------------------------------------------------------------------


def test_concurrent_updates_lose_nothing(repo: Repository, samples: dict) -> None:
    repo.update(samples["org_charite"])
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(8):
                repo.update({**samples["org_charite"], "name": f"writer {n} update {i}"})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert repo.read("Organization", "org-charite").version_id == 33
    total, versions = repo.history("Organization", "org-charite", count=100)
    assert total == 33 and sorted(v.version_id for v in versions) == list(range(1, 34))


def test_a_read_unit_sees_one_snapshot(repo: Repository, samples: dict) -> None:
    """A read unit's queries agree with each other (total and page of one search come from one
    snapshot, search.html#total) even while another thread commits a write in between."""
    if isinstance(repo, MemoryRepository):
        pytest.skip("the in-memory double serialises every unit under one lock")
    unit = repo.unit  # type: ignore[attr-defined]
    repo.update(samples["org_charite"])
    query = parse_search("Organization", [])
    with unit(False) as uow:
        before = uow.search(query)[0]
        writer = threading.Thread(target=repo.create, args=({"resourceType": "Organization", "name": "Neu"},))
        writer.start()
        writer.join(timeout=10)
        assert not writer.is_alive(), "a write must not wait for a reader"
        assert uow.search(query)[0] == before
    assert repo.search(query).total == before + 1


def test_a_transaction_caught_in_a_deadlock_runs_again(repo: Repository, samples: dict) -> None:
    """PostgreSQL aborts one of two transactions that wait on each other's rows (40P01). A
    `transaction()` that owns its unit runs again and succeeds; a unit someone else opened gets a
    TransientConflict (503) to handle, never a bare driver error."""
    if type(repo).__name__ != "PostgreSQLRepository":
        pytest.skip("only PostgreSQL locks rows: SQLite has one writer, the in-memory double one lock")
    patient, organization = {**samples["patient_mueller"], "id": "pat-deadlock"}, samples["org_charite"]
    repo.update(patient)
    repo.update(organization)
    patient_locked = threading.Barrier(2, timeout=10)
    holder_outcome: list[str] = []

    def holder() -> None:  # holds the Patient, then wants the Organization the Bundle holds
        try:
            with repo.unit(True) as uow:  # type: ignore[attr-defined]
                uow.current("Patient", patient["id"])
                patient_locked.wait()
                time.sleep(0.3)  # the Bundle locks the Organization and waits for the Patient
                repo.update({**organization, "name": "held"})
            holder_outcome.append("committed")
        except TransientConflict:
            holder_outcome.append("rolled back")

    thread = threading.Thread(target=holder)
    thread.start()
    patient_locked.wait()
    results = repo.transaction([  # locks Organization, then Patient (sorted), in its own unit
        BundleEntryRequest("PUT", f"Organization/{organization['id']}", {**organization, "name": "bundle"}),
        BundleEntryRequest("PUT", f"Patient/{patient['id']}", {**patient, "gender": "other"}),
    ])
    thread.join(10)
    assert len(results) == 2 and holder_outcome in (["committed"], ["rolled back"])
    assert repo.read("Patient", patient["id"]).resource["gender"] == "other"


def test_two_bundles_creating_one_new_id_at_once_both_succeed(repo: Repository) -> None:
    """Two messages naming one new practitioner: the second Bundle waits for the first's unit (PostgreSQL:
    its lock on the absent id, then a duplicate key, and its unit runs again) and makes version 2."""
    if isinstance(repo, MemoryRepository):
        pytest.skip("the in-memory double serialises every unit under one lock")
    url, organization = "Organization/org-new", {"resourceType": "Organization", "id": "org-new"}
    created = threading.Event()

    def first() -> None:
        with repo.unit(True):  # type: ignore[attr-defined]
            repo.transaction([BundleEntryRequest("PUT", url, {**organization, "name": "first"})])
            created.set()
            time.sleep(0.3)  # the second Bundle reads the id as absent and waits for this unit

    thread = threading.Thread(target=first)
    thread.start()
    assert created.wait(10)
    [result] = repo.transaction([BundleEntryRequest("PUT", url, {**organization, "name": "second"})])
    thread.join(10)
    stored = repo.read("Organization", "org-new")
    assert (stored.version_id, stored.resource["name"]) == (2, "second") and not result.created


def test_postgresql_plans_each_search_for_its_values(repo: Repository) -> None:
    """psycopg prepares a statement run five times and PostgreSQL may then reuse one generic plan for
    any values; a search's selectivity depends on them (one patient, or all), and the generic plan of
    Observation?patient=&code=&date= ran ~60x slower. Every store connection plans per execution."""
    if type(repo).__name__ != "PostgreSQLRepository":
        pytest.skip("a PostgreSQL planner setting")
    conn = repo._connection()  # type: ignore[attr-defined]
    assert conn.execute("SHOW plan_cache_mode").fetchone()[0] == "force_custom_plan"
