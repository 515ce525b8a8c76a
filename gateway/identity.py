"""One person, one record: how inbound Patients are merged, linked and retired (FHIR R4 patient.html#links, person.html).

Called once per message from the ingest apply step, inside the transaction that stores the
message, so identity changes are stored with the message or not at all.

Representation (choice):
- Same person in several source systems (each source's Patient has its own deterministic id,
  mappers/ids.py) and the same *strong identifier* (setting PULSEBRIDGE_STRONG_IDENTIFIERS,
  default the v2 table 0203 type NNCHN, the Chinese resident ID number): each Patient gets a
  `link` of type `seealso` to each of the others (R4 Patient.link: "known to contain data about
  the same person ... both should be regarded as equally valid" - no source is the master), and
  one `Person` with id uuid5("Person|strong|<kind>|<name>|<value>") carries the strong
  identifier and a `link` (assurance level3) to every Patient of that person: a stable handle an
  app can search (`Person?identifier=...`, `Person?link=Patient/x`). Patient.link cannot point to
  a Person (R4: Patient | RelatedPerson), hence both.
- Merges (A40, A34-A36, A39-A42; the mapper reads MRG): the prior Patient is active=false with
  link `replaced-by` the survivor, the survivor links `replaces` the prior. Nothing is moved: the
  prior's Encounters, Observations ... keep pointing at it and are reached through that link.
  The survivor also takes over the prior's `seealso` links (both ways).
- A24 links the two PID groups' Patients (`seealso` both ways); A37 removes those links, and
  where both belong to one Person the second group's Patient stays listed with assurance
  level1 ("little or no confidence"), so it is not linked again on its next message.

The `$everything` contract: the record of Patient X is the compartments of every Patient
reachable from X by following Patient.link of type `replaces` or `seealso` repeatedly (with a
visited set); `replaced-by` is not followed from a survivor, and a client that reads a retired
Patient follows its `replaced-by` link to the survivor.

Patient updates: events listed as "snapshot" in gateway/data/identity-events.json (A01, A04,
A05, A08, A14, A28, A31) carry the registration system's full PID and replace the stored
demographics; every other message (ORU, A40's PID, A37 ...) merges: each element it carries
replaces the stored one, elements it lacks are kept (HL7 v2.5 2.5.3: a field not sent means "no
change"), identifiers are added, never dropped. In both cases links are kept (they are ours) and a
retired Patient stays retired. A Patient the ingest order guard left out (older event) keeps its
demographics, but the message's merge/link/unlink still applies to it.

Encounter updates, the same rule for the visit: events listed under "visit" in the data file (the
ADT and BAR events by which the registration or accounting system states the visit) replace the
stored Encounter; every other message (ORU, MDM, SIU ...) only adds the elements the stored
Encounter lacks, so its thinner PV1 never reopens a finished stay or drops a period, class,
reasonCode, hospitalization or location; identifiers are added, never dropped.

Order updates: the messages listed under "orders" in the data file (ORM/OMx, RDE, REF) state the
ServiceRequest or MedicationRequest and replace it; every other message naming the order (an ORU's
result, an RDS dispense ...) updates it: what it carries replaces (the result's ORC-5 status), what
it lacks is kept (the order's timing, priority, requester), identifiers are added. Either way an
order stored in an end state ("order_end_states": completed, revoked ...) keeps it when the message
gives an open one, so a late or resent ORM never reopens an order its result completed.

Named resources, the same rule for what a message only names (mappers ConversionReport.named):
a Practitioner, Organization, Location ... made from a datatype in another segment's field
(PV1-7, ORC-12, MSH-4, PV1-3) takes "update": the elements the message carries replace the stored
ones, those it lacks are kept (v2.5 2.5.3), so an ORU naming a practitioner by id alone never
drops the name an ADT sent; a resource a segment names by identifier only (the DG1-22 parent
Condition, the PR1-25 parent Procedure with its placeholder status) takes "fill": it only adds
what the stored one lacks. Identifiers are added, never dropped.

Every extra resource written here (other Patients' links, the Person) is added to the message's
Provenance.target. Identity resolution takes one advisory lock per transaction on PostgreSQL
(SQLite's write lock already serialises), so two messages about one person cannot race.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from adapters.hl7v2 import Message
from adapters.storage.base import BundleEntryRequest, Gone, NotFound, Repository
from adapters.storage.query import parse_search
from mappers.ids import resource_id
from mappers.report import FILL, UPDATE

EVENTS = Path(__file__).resolve().parent / "data" / "identity-events.json"
SEEALSO, REPLACES, REPLACED_BY = "seealso", "replaces", "replaced-by"
STATE = "state"  # merge_named's rule for an order a message states (data file "orders"): it replaces the stored one
LINKED, CONTESTED = "level3", "level1"  # R4 identity-assuranceLevel
MANAGED = ("id", "resourceType", "meta", "identifier", "link", "active")
"""Patient elements the merge rule treats specially; every other element follows snapshot/merge."""


@dataclass(frozen=True)
class StrongIdentifiers:
    """Which identifiers name a person across sources: v2 table 0203 type codes and/or Identifier.system URIs.

    Text form (the setting): comma-separated; an entry with "://" or starting with "urn:" is a
    system, anything else a type code, e.g. `NNCHN,urn:oid:2.16.156.10011.1.1`."""

    types: frozenset[str] = frozenset({"NNCHN"})
    systems: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> StrongIdentifiers:
        entries = [e.strip() for e in text.split(",") if e.strip()]
        systems = {e for e in entries if "://" in e or e.startswith("urn:")}
        return cls(frozenset(e.upper() for e in entries if e not in systems), frozenset(systems))

    def keys(self, patient: dict[str, Any]) -> list[tuple[str, str, str]]:
        """(kind, type code or system, value) for each strong identifier of a Patient; values compared trimmed, upper-case."""
        found: list[tuple[str, str, str]] = []
        for identifier in patient.get("identifier") or []:
            value = str(identifier.get("value") or "").strip().upper()
            if not value:
                continue
            system = identifier.get("system") or ""
            codes = {(c.get("code") or "").upper() for c in (identifier.get("type") or {}).get("coding") or []}
            if system in self.systems:
                found.append(("system", system, value))
            for code in sorted(codes & self.types):
                found.append(("type", code, value))
        return list(dict.fromkeys(found))


def person_id(key: tuple[str, str, str]) -> str:
    """The deterministic Person id of a strong identifier (same rule family as mappers/ids.py)."""
    return resource_id("Person", ("strong", *key))


@lru_cache(maxsize=1)
def _events() -> dict[str, dict[str, list[str]]]:
    return json.loads(EVENTS.read_text(encoding="utf-8"))


def event_role(message: Message) -> str:
    """snapshot | link | unlink | update (everything else), from MSH-9 and the data file."""
    code, event = message.message_code, message.trigger_event
    for role in ("snapshot", "link", "unlink"):
        if event in _events()[role].get(code, []):
            return role
    return "update"


def _order_rules(requests: list[BundleEntryRequest], message: Message) -> dict[str, str]:
    """"Type/id" -> STATE for each order the message states, UPDATE for each it names without stating it
    (data file "orders", module docstring)."""
    owners = _events()["orders"]
    return {r.url: STATE if message.message_code in stating else UPDATE for r in requests if r.method == "PUT" and "?" not in r.url
            and (stating := owners.get(r.url.partition("/")[0])) is not None}


def owns_visit(message: Message) -> bool:
    """Whether the event states the visit itself (data file "visit": ADT v2.5 3.3, BAR v2.5 6.4), replacing the Encounter."""
    return message.trigger_event in _events()["visit"].get(message.message_code, [])


def _identifier_key(identifier: dict[str, Any]) -> tuple[str, str, str]:
    codes = (identifier.get("type") or {}).get("coding") or [{}]
    return identifier.get("system") or "", codes[0].get("code") or "", str(identifier.get("value") or "")


def _union(stored: list[dict], incoming: list[dict], key: Any) -> list[dict]:
    """Stored items, those the message also sends replaced by its version, then the message's new ones."""
    fresh = {key(item): item for item in incoming}
    merged = [fresh.pop(key(item), item) for item in stored]
    return merged + list(fresh.values())


def _link_key(link: dict[str, Any]) -> tuple[str, str]:
    return (link.get("other") or {}).get("reference", ""), link.get("type", "")


def retired(patient: dict[str, Any]) -> bool:
    """A Patient merged away: it links replaced-by another (R4 Patient.link.type)."""
    return any(link.get("type") == REPLACED_BY for link in patient.get("link") or [])


def merge_patient(stored: dict[str, Any] | None, incoming: dict[str, Any], *, snapshot: bool) -> dict[str, Any]:
    """The Patient to store when a message sends `incoming` for a stored one (rule in the module docstring)."""
    if stored is None:
        return incoming
    base = {k: v for k, v in stored.items() if k != "meta"}
    if snapshot:
        result = dict(incoming)
        result.setdefault("identifier", [])
    else:
        result = {**base, **{k: v for k, v in incoming.items() if k not in MANAGED}}
        result["identifier"] = _union(base.get("identifier") or [], incoming.get("identifier") or [], _identifier_key)
    links = _union(base.get("link") or [], incoming.get("link") or [], _link_key)
    if links:
        result["link"] = links
    if "active" in incoming:
        result["active"] = incoming["active"]
    elif "active" in base:
        result["active"] = base["active"]
    if retired(result):
        result["active"] = False  # replaced-by: "must no longer be used" until a new merge says otherwise
    if not result.get("identifier"):
        result.pop("identifier", None)
    return result


def merge_named(stored: dict[str, Any] | None, incoming: dict[str, Any], rule: str) -> dict[str, Any]:
    """The resource to store when a message names it without stating it (module docstring): "update" or "fill",
    or states an order ("state": replaced); identifiers unioned; an order's end state kept."""
    if stored is None:
        return incoming
    if rule == STATE:
        result = dict(incoming)
    else:
        result = {k: v for k, v in stored.items() if k != "meta"}
        if rule == FILL:
            for key, value in incoming.items():
                result.setdefault(key, value)
        else:
            result.update(incoming)
    identifiers = _union(stored.get("identifier") or [], incoming.get("identifier") or [], _identifier_key)
    if identifiers:
        result["identifier"] = identifiers
    ends = _events()["order_end_states"].get(stored.get("resourceType", ""), ())
    if stored.get("status") in ends and result.get("status") not in ends:
        result["status"] = stored["status"]
    return result


@dataclass
class _WorkingSet:
    """The message's entries plus the resources identity rules touch, read once and written as PUTs."""

    repository: Repository
    requests: list[BundleEntryRequest]
    rule: StrongIdentifiers
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # "Type/id" -> resource to write
    stored: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    touched: list[str] = field(default_factory=list)  # refs written beyond the message's own entries

    def __post_init__(self) -> None:
        for request in self.requests:
            if request.method == "PUT" and request.resource is not None and "?" not in request.url:
                self.resources[request.url] = request.resource

    def load(self, ref: str) -> dict[str, Any] | None:
        """The stored resource (None when absent or deleted), read once per message."""
        if ref not in self.stored:
            resource_type, _, resource_id_ = ref.partition("/")
            try:
                version = self.repository.read(resource_type, resource_id_)
                self.stored[ref] = {k: v for k, v in (version.resource or {}).items() if k != "meta"}
            except (NotFound, Gone):
                self.stored[ref] = None
        return self.stored[ref]

    def get(self, ref: str) -> dict[str, Any] | None:
        """What will be stored for ref after this message: pending content, else the stored one."""
        if ref in self.resources:
            return self.resources[ref]
        stored = self.load(ref)
        return None if stored is None else copy.deepcopy(stored)

    def put(self, ref: str, resource: dict[str, Any]) -> None:
        if ref not in self.resources and ref not in self.touched:
            self.touched.append(ref)
        self.resources[ref] = resource

    def finish(self) -> list[BundleEntryRequest]:
        """The message's requests with identity-adjusted content, then the extra PUTs."""
        out = [
            BundleEntryRequest(r.method, r.url, self.resources.get(r.url, r.resource), r.full_url, r.if_none_exist, r.if_match)
            if r.method == "PUT" and "?" not in r.url else r
            for r in self.requests
        ]
        extra = [BundleEntryRequest("PUT", ref, self.resources[ref], f"urn:uuid:{ref.partition('/')[2]}") for ref in self.touched]
        for request in out:
            if request.resource is not None and request.resource.get("resourceType") == "Provenance" and extra:
                targets = request.resource.setdefault("target", [])
                targets.extend({"reference": r.url} for r in extra if {"reference": r.url} not in targets)
        return out + extra


def _add_link(patient: dict[str, Any], other: str, link_type: str) -> None:
    links = patient.setdefault("link", [])
    if (other, link_type) not in {_link_key(link) for link in links}:
        links.append({"other": {"reference": other}, "type": link_type})


def _drop_link(patient: dict[str, Any], other: str, link_type: str) -> None:
    links = [link for link in patient.get("link") or [] if _link_key(link) != (other, link_type)]
    if links:
        patient["link"] = links
    else:
        patient.pop("link", None)


def _relate(work: _WorkingSet, a: str, b: str, *, linked: bool) -> None:
    """Add (or remove) `seealso` links between two Patients, both ways."""
    for this, other in ((a, b), (b, a)):
        patient = work.get(this)
        if patient is None or this == other:
            continue
        if linked and not retired(patient):
            _add_link(patient, other, SEEALSO)
        elif not linked:
            _drop_link(patient, other, SEEALSO)
        work.put(this, patient)


def _join_person(work: _WorkingSet, ref: str, key: tuple[str, str, str]) -> None:
    """Make the Patient a member of its strong identifier's Person; link it with the members it is new to."""
    person_ref = f"Person/{person_id(key)}"
    person = work.get(person_ref) or {
        "resourceType": "Person", "id": person_id(key), "active": True,
        "identifier": [_person_identifier(key)],
    }
    members = {(link.get("target") or {}).get("reference", ""): link for link in person.get("link") or []}
    value = key[2]
    values = ",".join(_escape(v) for v in dict.fromkeys((value, value.lower())))
    found = work.repository.search(parse_search("Patient", [("identifier", values), ("_count", "500")])).matches
    candidates = [f"Patient/{p['id']}" for p in found if _member_of(work, f"Patient/{p['id']}", key)]
    newcomers = [r for r in dict.fromkeys([ref, *candidates]) if r not in members]
    if not newcomers:
        return
    for newcomer in newcomers:
        members[newcomer] = {"target": {"reference": newcomer}, "assurance": LINKED}
    confident = [r for r, link in members.items() if link.get("assurance") == LINKED]
    for newcomer in newcomers:
        for other in confident:
            if other != newcomer and not retired(work.get(other) or {}):
                _relate(work, newcomer, other, linked=True)
    person["link"] = [members[r] for r in sorted(members)]
    work.put(person_ref, person)


def _escape(value: str) -> str:
    """A search value with FHIR's reserved characters escaped (R4 search.html#escaping)."""
    for char in ("\\", ",", "$", "|"):
        value = value.replace(char, "\\" + char)
    return value


def _member_of(work: _WorkingSet, ref: str, key: tuple[str, str, str]) -> bool:
    """Whether the Patient, as it will be after this message, carries the strong key and is not retired."""
    patient = work.get(ref)
    return patient is not None and not retired(patient) and key in work.rule.keys(patient)


def _person_identifier(key: tuple[str, str, str]) -> dict[str, Any]:
    kind, name, value = key
    if kind == "system":
        return {"system": name, "value": value}
    return {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": name}]}, "value": value}


def _lock(repository: Repository, *keys: str) -> None:
    """Serialise identity resolution across processes (PostgreSQL advisory lock; SQLite's write lock already does)."""
    unit = getattr(repository, "unit", None)
    if unit is not None:
        with unit(True) as uow:  # joins the ingest transaction
            for key in keys or ("pulsebridge.identity",):
                uow.lock(key)


def _visit_rules(requests: list[BundleEntryRequest], message: Message, repository: Repository) -> dict[str, str]:
    """"Encounter/id" -> FILL for each visit a message that does not own it sends (module docstring); locks them."""
    refs = sorted({r.url for r in requests if r.method == "PUT" and r.url.startswith("Encounter/") and "?" not in r.url and r.resource})
    if not refs or owns_visit(message):
        return {}
    _lock(repository, *(f"pulsebridge.encounter|{ref}" for ref in refs))  # read-merge-write, one message at a time
    return dict.fromkeys(refs, FILL)


def _merge_named(requests: list[BundleEntryRequest], named: dict[str, str], repository: Repository) -> list[BundleEntryRequest]:
    """Each resource the message names without stating it (a visit, an order, a practitioner, a parent) merges
    into its stored copy by its rule (module docstring).

    Reads come from the ingest unit's prefetch, which has locked every PUT target (on PostgreSQL an id
    not stored yet too), so two messages naming one resource merge into it one after the other."""
    if not named:
        return requests
    work = _WorkingSet(repository, [], StrongIdentifiers())
    return [
        BundleEntryRequest(r.method, r.url, merge_named(work.load(r.url), r.resource, named[r.url]), r.full_url, r.if_none_exist, r.if_match)
        if r.url in named and r.method == "PUT" and r.resource else r
        for r in requests
    ]


def _patient_puts(requests: list[BundleEntryRequest]) -> list[BundleEntryRequest]:
    return [r for r in requests if r.method == "PUT" and r.url.startswith("Patient/") and "?" not in r.url and r.resource]


def resolve(
    requests: list[BundleEntryRequest], message: Message, repository: Repository, strong_identifiers: str,
    *, mapped: list[BundleEntryRequest] | None = None, named: dict[str, str] | None = None,
) -> tuple[list[BundleEntryRequest], list[str]]:
    """Apply the identity rules (and the Encounter, order and named-resource rules) to one message's requests;
    returns the requests to store and log notes.

    `mapped` is the message's Bundle before the ingest order guard left out Patients that newer
    data has overtaken: their demographics stay as stored, but the message's identity operations
    (merge, link, unlink) still apply to them. `named`: the resources the message only names, with
    their rule (mappers ConversionReport.named). Must run inside the transaction that stores the
    requests (its reads and writes are one unit)."""
    rules = {**_visit_rules(requests, message, repository), **_order_rules(requests, message), **(named or {})}
    requests = _merge_named(requests, rules, repository)
    patients = _patient_puts(mapped if mapped is not None else requests)
    if not patients:
        return requests, []
    _lock(repository)
    rule = StrongIdentifiers.parse(strong_identifiers)
    role = event_role(message)
    work = _WorkingSet(repository, requests, rule)
    notes: list[str] = []
    for request in patients:
        ref, incoming = request.url, request.resource or {}
        if ref in work.resources:
            work.resources[ref] = merge_patient(work.load(ref), work.resources[ref], snapshot=role == "snapshot")
        elif work.load(ref) is not None:  # left out by the order guard: only its identity elements
            identity = {k: v for k, v in incoming.items() if k in ("resourceType", "id", "link")}
            if retired(incoming):
                identity["active"] = False
            work.put(ref, merge_patient(work.get(ref), identity, snapshot=False))
    refs = [r.url for r in patients if work.get(r.url) is not None]
    for ref in refs:  # a merge: the survivor takes over the prior's seealso links
        patient = work.get(ref) or {}
        survivors = [link["other"]["reference"] for link in patient.get("link") or [] if link.get("type") == REPLACED_BY]
        for survivor in survivors:
            for link in patient.get("link") or []:
                if link.get("type") == SEEALSO:
                    _relate(work, survivor, link["other"]["reference"], linked=True)
    if role in ("link", "unlink") and len(refs) >= 2:
        first, second = refs[0], refs[1]
        _relate(work, first, second, linked=role == "link")
        if role == "unlink":
            _contest(work, first, second, rule)
        notes.append(f"{'linked' if role == 'link' else 'unlinked'} {first} and {second}")
    for ref in refs:
        patient = work.get(ref) or {}
        if retired(patient):
            continue
        for key in rule.keys(patient):
            _join_person(work, ref, key)
    return work.finish(), notes


def _contest(work: _WorkingSet, first: str, second: str, rule: StrongIdentifiers) -> None:
    """A37 between two Patients of one Person: the second stays listed at level1, so it is not relinked."""
    keys = set(rule.keys(work.get(first) or {})) & set(rule.keys(work.get(second) or {}))
    for key in sorted(keys):
        person_ref = f"Person/{person_id(key)}"
        person = work.get(person_ref)
        if person is None:
            person = {"resourceType": "Person", "id": person_id(key), "active": True, "identifier": [_person_identifier(key)],
                      "link": [{"target": {"reference": first}, "assurance": LINKED}]}
        links = [link for link in person.get("link") or [] if (link.get("target") or {}).get("reference") != second]
        person["link"] = sorted(links + [{"target": {"reference": second}, "assurance": CONTESTED}],
                                key=lambda link: link["target"]["reference"])
        work.put(person_ref, person)
