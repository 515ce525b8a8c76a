"""Shared by the authentication tests: the HS256 secret, token minting, and two patients' records to keep apart."""
from __future__ import annotations

from adapters.storage.base import Repository
from gateway.security.tokens import TokenSettings, mint

SECRET = "test-secret-of-at-least-thirty-two-bytes!"
SETTINGS = TokenSettings(secret=SECRET)

# Patient A (with a second, linked record A2) and patient B; B's ids must never appear in A's answers.
A, A2, B = "pat-a", "pat-a2", "pat-b"
B_MARKERS = ("pat-b", "obs-b", "enc-b", "Bravo")


def bearer(scope: str, patient: str | None = None, **kwargs: object) -> dict[str, str]:
    """The Authorization header of a fresh HS256 token."""
    return {"Authorization": "Bearer " + mint(SETTINGS, scope, subject="tester", patient=patient, **kwargs)}  # type: ignore[arg-type]


def patient(patient_id: str, family: str, link: str | None = None) -> dict:
    resource: dict = {"resourceType": "Patient", "id": patient_id, "name": [{"family": family}]}
    if link:
        resource["link"] = [{"other": {"reference": f"Patient/{link}"}, "type": "seealso"}]
    return resource


def observation(observation_id: str, subject: str, performer: str | None = None) -> dict:
    resource: dict = {
        "resourceType": "Observation", "id": observation_id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{subject}"}, "valueQuantity": {"value": 72, "unit": "/min"},
    }
    if performer:
        resource["performer"] = [{"reference": performer}]
    return resource


def encounter(encounter_id: str, subject: str) -> dict:
    return {"resourceType": "Encounter", "id": encounter_id, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": f"Patient/{subject}"}, "period": {"start": "2026-11-01", "end": "2026-11-03"}}


def audit_event(event_id: str, subject: str) -> dict:
    return {"resourceType": "AuditEvent", "id": event_id,
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
            "recorded": "2026-12-01T08:00:00Z", "agent": [{"requestor": True, "who": {"display": "tester"}}],
            "source": {"observer": {"display": "PulseBridge"}},
            "entity": [{"what": {"reference": f"Patient/{subject}"}}]}


def seed(store: Repository) -> None:
    """Two patients' records, a practitioner both saw, and an audit event about A."""
    for resource in (
        patient(A, "Alpha"), patient(A2, "Alpha", link=A), patient(B, "Bravo"),
        {"resourceType": "Practitioner", "id": "doc-1", "name": [{"family": "Chen"}]},
        observation("obs-a", A, performer="Practitioner/doc-1"), observation("obs-a2", A2),
        observation("obs-b", B, performer="Practitioner/doc-1"), observation("obs-del", A),
        encounter("enc-a", A), encounter("enc-b", B), audit_event("audit-a", A),
    ):
        store.update(resource)
