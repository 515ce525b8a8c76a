"""R4 AuditEvent builders in the shape of IHE Basic Audit Log Patterns (BALP) (FHIR R4 auditevent.html, IHE ITI BALP).

Pure functions: plain data in, one AuditEvent dict out. What an event may carry is fixed here, so no
caller can leak clinical content into the trail: who (token subject, client, network address), what
(`Type/id` references, the patient as its own entity, search parameter NAMES), when, and the outcome
as codes (HTTP status, OperationOutcome issue codes and element paths, HL7 ACK and table 0357 codes).
Never names, values, search parameter values, diagnostics text or message text: those can all echo PHI.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
V2_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0003"
SUBJECT_SYSTEM = "urn:pulsebridge:token-subject"  # a token `sub` without an `iss` to scope it
CLIENT_SYSTEM = "urn:pulsebridge:client-id"
SENDER_SYSTEM = "urn:pulsebridge:hl7v2-sender"  # MSH-3^MSH-4 as sent
MESSAGE_LOG_SYSTEM = "urn:pulsebridge:message-log"  # the raw message log's row id
SITE = "PULSEBRIDGE"
OBSERVER = {"reference": "Device/pulsebridge", "display": "PulseBridge FHIR gateway"}

# BALP: the event type of a RESTful interaction is `rest`, its subtype the interaction (valueset-audit-event-sub-type).
REST_TYPE = {"system": EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
# DICOM PS3.16 CID 400 audit event ids for what is not a FHIR interaction.
IMPORT_TYPE = {"system": DCM, "code": "110107", "display": "Import"}
PATIENT_RECORD_TYPE = {"system": DCM, "code": "110110", "display": "Patient Record"}
QUERY_TYPE = {"system": DCM, "code": "110112", "display": "Query"}

# auditevent.html#action (table audit-event-action): what each R4 interaction does to data.
INTERACTION_ACTION: dict[str, str] = {
    "read": "R", "vread": "R", "search": "E", "search-type": "E", "search-system": "E",
    "history": "R", "history-instance": "R", "history-type": "R", "history-system": "R", "capabilities": "R",
    "create": "C", "update": "U", "patch": "U", "delete": "D",
    "transaction": "E", "batch": "E", "operation": "E",
}
# BALP ITI-81/FHIR search: a query is Execute. Patient record operations ($everything, $summary) too.

# audit-event-outcome: 0 success, 4 minor failure, 8 serious failure, 12 major failure.
SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE = "0", "4", "8"
# HL7 v2 table 0008 acknowledgment codes -> outcome: a rejected message is the sender's error (like a 4xx).
ACK_OUTCOME: dict[str, str] = {"AA": SUCCESS, "CA": SUCCESS, "AR": MINOR_FAILURE, "CR": MINOR_FAILURE,
                               "AE": SERIOUS_FAILURE, "CE": SERIOUS_FAILURE}

# DICOM roles of the two ends of a request (BALP "client" and "server" agents) and of an application.
SOURCE_ROLE = {"system": DCM, "code": "110153", "display": "Source Role ID"}
DESTINATION_ROLE = {"system": DCM, "code": "110152", "display": "Destination Role ID"}
APPLICATION_ROLE = {"system": DCM, "code": "110150", "display": "Application"}
# audit-entity-type / object-role codes for what an event touched.
PERSON = {"system": ENTITY_TYPE, "code": "1", "display": "Person"}
SYSTEM_OBJECT = {"system": ENTITY_TYPE, "code": "2", "display": "System Object"}
PATIENT_ROLE = {"system": OBJECT_ROLE, "code": "1", "display": "Patient"}
REPORT_ROLE = {"system": OBJECT_ROLE, "code": "3", "display": "Report"}
DOMAIN_RESOURCE_ROLE = {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"}
QUERY_ROLE = {"system": OBJECT_ROLE, "code": "24", "display": "Query"}
APPLICATION_SERVER = {"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}

_REFERENCE = re.compile(r"^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True)
class Requester:
    """Who asked: the access token's subject and client, and the network address (BALP user and client agents)."""

    subject: str
    client_id: str | None = None
    address: str | None = None
    issuer: str | None = None  # the token's `iss`, which scopes `sub`
    fhir_user: str | None = None  # SMART `fhirUser`, e.g. Practitioner/123: searchable as agent=


@dataclass(frozen=True)
class Sender:
    """The HL7 v2 system a message came from: MSH-3, MSH-4 and the peer address (IHE ITI-8 source agent)."""

    application: str
    facility: str
    address: str | None = None


@dataclass(frozen=True)
class MessageFacts:
    """What an ingest event may say about a message: ids and codes only, never its text (MSH-9, MSH-10)."""

    message_id: int | None
    control_id: str
    message_type: str  # MSH-9 as ADT^A01
    transport: str  # mllp, http, file
    ack_code: str
    error_code: str | None = None  # table 0357
    error_location: str | None = None  # ERR-2 style, e.g. PID-7


def observer_device() -> dict:
    """This gateway as a Device, the `source.observer` of every event it records (BALP: the audit source)."""
    return {
        "resourceType": "Device",
        "id": OBSERVER["reference"].split("/")[1],
        "status": "active",
        "deviceName": [{"name": OBSERVER["display"], "type": "user-friendly-name"}],
    }


def is_reference(value: str) -> bool:
    """A relative literal reference `Type/id` (R4 references.html#literal)."""
    return bool(_REFERENCE.match(value))


def http_outcome(status: int) -> str:
    """audit-event-outcome of an HTTP status: 2xx/3xx success, 4xx minor (the request), 5xx serious (the server)."""
    if status < 400:
        return SUCCESS
    return MINOR_FAILURE if status < 500 else SERIOUS_FAILURE


def issue_description(status: int, issues: Iterable[dict]) -> str:
    """outcomeDesc from an OperationOutcome: the status, issue codes and element paths; never diagnostics (they echo input)."""
    parts = []
    for issue in issues:
        code = issue.get("code") if isinstance(issue, dict) else None
        if not isinstance(code, str):
            continue
        paths = [p for p in issue.get("expression") or () if isinstance(p, str) and _is_path(p)]
        parts.append(f"{code} at {', '.join(paths)}" if paths else code)
    return f"HTTP {status}" + (f": {'; '.join(parts)}" if parts else "")


def _is_path(expression: str) -> bool:
    """An element path or parameter name (Patient.birthDate, start), not a value."""
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*(\[\d+\])?(\.[A-Za-z_][A-Za-z0-9_\-]*(\[\d+\])?)*", expression))


def rest_event(
    *,
    interaction: str,
    status: int,
    recorded: datetime,
    requester: Requester,
    resource_type: str | None = None,
    resources: Iterable[str] = (),
    patients: Iterable[str] = (),
    parameter_names: Sequence[str] | None = None,
    outcome_issues: Iterable[dict] = (),
    operation: str | None = None,
) -> dict:
    """One RESTful interaction (BALP "Basic AuditEvent for a RESTful ..." patterns): type rest, subtype the interaction."""
    subtype = [{"system": RESTFUL_INTERACTION, "code": interaction, "display": interaction}]
    entities = _entities(resources, patients)
    if parameter_names is not None:
        entities.append(_query_entity(resource_type, parameter_names))
    if operation:
        entities.append({"type": SYSTEM_OBJECT, "role": QUERY_ROLE, "description": f"${operation}"})
    return _request_event(REST_TYPE, subtype, INTERACTION_ACTION.get(interaction, "E"), recorded, requester, status,
                          outcome_issues, entities)


def admin_event(
    *, action: str, status: int, recorded: datetime, requester: Requester, message_id: int | None = None,
    outcome_issues: Iterable[dict] = (),
) -> dict:
    """An IT administration request on the message log: Query (list), Patient Record (a message's text shown), Import (replay)."""
    event_type = {"R": PATIENT_RECORD_TYPE, "C": IMPORT_TYPE}.get(action, QUERY_TYPE) if message_id is not None else QUERY_TYPE
    entities = [_message_entity(message_id)] if message_id is not None else []
    return _request_event(event_type, [], action, recorded, requester, status, outcome_issues, entities)


def ingest_event(
    *,
    message: MessageFacts,
    sender: Sender,
    recorded: datetime,
    requester: Requester | None = None,
    resources: Iterable[str] = (),
    patients: Iterable[str] = (),
    note: str | None = None,
) -> dict:
    """One HL7 v2 message imported (DICOM 110107 Import, as IHE ITI-8/ITI-30 feeds are audited): sender, message ids, resources."""
    trigger = message.message_type.partition("^")[2]
    subtype = [{"system": V2_EVENT_TYPE, "code": trigger}] if trigger else []
    outcome = ACK_OUTCOME.get(message.ack_code, SERIOUS_FAILURE)
    description = f"ACK {message.ack_code}" if message.ack_code else "not acknowledged"
    if message.error_code:
        description += f": HL7 error {message.error_code}" + (f" at {message.error_location}" if message.error_location else "")
    if note:
        description += f" ({note})"
    agents = [_sender_agent(sender, requestor=requester is None)]
    if requester is not None:
        agents += _agents(requester)
    entities = [_message_entity(message.message_id, message)] + _entities(resources, patients)
    return _event(IMPORT_TYPE, subtype, "C", recorded, outcome, description if outcome != SUCCESS or note else None, agents, entities)


# -- parts ---------------------------------------------------------------------------------------


def _event(
    event_type: dict, subtype: list[dict], action: str, recorded: datetime, outcome: str,
    description: str | None, agents: list[dict], entities: list[dict],
) -> dict:
    event: dict = {"resourceType": "AuditEvent", "type": event_type}
    if subtype:
        event["subtype"] = subtype
    event["action"] = action
    event["recorded"] = _instant(recorded)
    event["outcome"] = outcome
    if description:
        event["outcomeDesc"] = description
    event["agent"] = agents
    event["source"] = {"site": SITE, "observer": dict(OBSERVER), "type": [APPLICATION_SERVER]}
    if entities:
        event["entity"] = entities
    return event


def _request_event(
    event_type: dict, subtype: list[dict], action: str, recorded: datetime, requester: Requester, status: int,
    outcome_issues: Iterable[dict], entities: list[dict],
) -> dict:
    """An event of one HTTP request: outcome and outcomeDesc from its status and OperationOutcome issues."""
    description = issue_description(status, outcome_issues) if status >= 400 else None
    return _event(event_type, subtype, action, recorded, http_outcome(status), description, _agents(requester), entities)


def _instant(moment: datetime) -> str:
    """An R4 instant in UTC with milliseconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _network(address: str | None) -> dict | None:
    """agent.network: type 2 for an IP address, 1 for a machine name (network-type)."""
    if not address:
        return None
    address, kind = _address_kind(address)
    return {"address": address, "type": kind}


@lru_cache(maxsize=1024)  # callers come from few addresses; parsing one is most of an event's cost
def _address_kind(address: str) -> tuple[str, str]:
    if not _is_ip(address):
        host, _, port = address.rpartition(":")
        if port.isdigit() and _is_ip(host.strip("[]")):  # a peer written host:port or [v6]:port (MLLP)
            address = host.strip("[]")
    return address, "2" if _is_ip(address) else "1"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _agents(requester: Requester) -> list[dict]:
    """BALP user agent (requestor: the token subject at its address) and, when known, the client application."""
    who: dict = {"identifier": {"system": requester.issuer or SUBJECT_SYSTEM, "value": requester.subject}}
    if requester.fhir_user and is_reference(requester.fhir_user):
        who["reference"] = requester.fhir_user
    user: dict = {"type": {"coding": [SOURCE_ROLE]}, "who": who, "altId": requester.subject, "requestor": True}
    network = _network(requester.address)
    if network:
        user["network"] = network
    agents = [user]
    if requester.client_id:
        agents.append({
            "type": {"coding": [APPLICATION_ROLE]},
            "who": {"identifier": {"system": CLIENT_SYSTEM, "value": requester.client_id}},
            "altId": requester.client_id,
            "requestor": False,
        })
    return agents


def _sender_agent(sender: Sender, *, requestor: bool) -> dict:
    """IHE ITI-8 source: the sending application and facility (MSH-3, MSH-4) at the peer address."""
    name = "^".join(part for part in (sender.application, sender.facility) if part) or "unknown"
    agent: dict = {
        "type": {"coding": [SOURCE_ROLE]},
        "who": {"identifier": {"system": SENDER_SYSTEM, "value": name}},
        "altId": name,
        "requestor": requestor,
    }
    network = _network(sender.address)
    if network:
        agent["network"] = network
    return agent


def _entities(resources: Iterable[str], patients: Iterable[str]) -> list[dict]:
    """The patients (type Person, role Patient) first, then every other resource touched (System Object, Domain Resource)."""
    patient_refs = list(dict.fromkeys(ref for ref in patients if is_reference(ref) and ref.startswith("Patient/")))
    seen = set(patient_refs)
    out = [{"what": {"reference": ref}, "type": PERSON, "role": PATIENT_ROLE} for ref in patient_refs]
    for ref in resources:
        if ref not in seen and is_reference(ref):
            seen.add(ref)
            out.append({"what": {"reference": ref}, "type": SYSTEM_OBJECT, "role": DOMAIN_RESOURCE_ROLE})
    return out


def _query_entity(resource_type: str | None, parameter_names: Sequence[str]) -> dict:
    """BALP query entity, without the query itself: the searched type and the parameter NAMES only."""
    entity: dict = {"type": SYSTEM_OBJECT, "role": QUERY_ROLE, "description": f"search {resource_type or 'all types'}"}
    names = sorted({name for name in parameter_names if _is_path(name.replace(":", "."))})
    if names:
        entity["detail"] = [{"type": "parameters", "valueString": ",".join(names)}]
    return entity


def _message_entity(message_id: int | None, message: MessageFacts | None = None) -> dict:
    """The logged HL7 v2 message, by its log row id; MSH-9 and MSH-10 as details (IHE ITI-8 message participant)."""
    entity: dict = {"type": SYSTEM_OBJECT, "role": REPORT_ROLE}
    if message_id is not None:
        entity["what"] = {"identifier": {"system": MESSAGE_LOG_SYSTEM, "value": str(message_id)}}
    if message is not None:
        details = [("MSH-9", message.message_type), ("MSH-10", message.control_id), ("transport", message.transport)]
        entity["detail"] = [{"type": kind, "valueString": value} for kind, value in details if value]
    return entity
