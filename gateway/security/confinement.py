"""Patient confinement (SMART App Launch v2 patient/ scopes; FHIR R4 compartmentdefinition-patient.html).

While a guarded FHIR handler runs, the app's repository is a `ConfinedRepository`. For a resource type
that only patient/ scopes allow, every search it makes is confined to the token's patient compartment
(the patient claim and the records linked to it) by an added compartment filter; a read of a resource outside
it is answered 404 as if it did not exist (no existence oracle); a write outside it is 403; type and system
history are 403; _include/_revinclude results outside it are dropped; transaction/batch entries are each
checked. Last line: every resource in an outgoing JSON body is checked again (`last_line`).
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from flask import Response, g, has_request_context

from adapters.storage.base import BundleEntryRequest, Gone, NotFound, Repository, Version, WriteOutcome
from adapters.storage.query import SearchFilter, SearchQuery, SearchResult, SearchValue, parse_search
from adapters.storage.search_parameters import parameter
from gateway.fhir.compartment import binding_parameter, compartment_filter, compartment_parameters, compartment_patients, linked_patient_ids
from gateway.fhir.outcome import FhirError
from gateway.security.scopes import SYSTEM_HISTORY, Grants

log = logging.getLogger(__name__)

CONTAINER_TYPES = frozenset({"Bundle"})
NOT_PATIENT_DATA = frozenset({"OperationOutcome", "CapabilityStatement", "Parameters"})
ENTRY_LETTERS = {"POST": "c", "PUT": "u", "DELETE": "d"}  # transaction/batch entries; GET is r (instance) or s (search)


class Forbidden(FhirError):
    """The token's scopes do not allow this (RFC 6750 section 3.1 insufficient_scope; FHIR http.html: 403)."""

    http_status = 403
    issue_code = "forbidden"


# --- the confined repository ------------------------------------------------------------------


@dataclass
class Guard:
    """What the caller of the running FHIR handler may see: its grants and, for patient/ scopes, its patients."""

    grants: Grants
    patient: str | None
    store: Repository
    _patients: frozenset[str] | None = field(default=None, init=False)

    @property
    def patients(self) -> frozenset[str]:
        """The token's patient and every record linked to it (patient.html#links); computed once per request."""
        if self._patients is None:
            if self.patient is None:
                self._patients = frozenset()
            else:
                try:
                    self._patients = frozenset(linked_patient_ids(self.store, self.patient))
                except (NotFound, Gone):
                    self._patients = frozenset({self.patient})
        return self._patients

    def require(self, resource_type: str, letter: str) -> None:
        """403 unless some scope allows `letter` on `resource_type`."""
        if not self.grants.allows(resource_type, letter):
            raise Forbidden(f"The token's scopes do not allow '{letter}' on {resource_type}")

    def bound(self, resource_type: str, letters: str) -> bool:
        """True when only patient/ scopes allow these letters on this type: the caller is confined to its patients."""
        contexts = frozenset().union(*(self.grants.contexts(resource_type, letter) for letter in letters))
        return bool(contexts) and contexts <= {"patient"}

    def may_see(self, resource: dict) -> bool:
        """Whether the token may read `resource`: a scope allows its type and, if patient-bound, it is in the patients' compartment."""
        resource_type = str(resource.get("resourceType"))
        if not (self.grants.allows(resource_type, "r") or self.grants.allows(resource_type, "s")):
            return False
        if not self.bound(resource_type, "rs"):
            return True
        patients = stored_compartment(resource)
        return patients is None or bool(patients & self.patients)

    def owns(self, resource: dict | None) -> bool:
        """For a patient-bound write: `resource` is in the compartment of the token's patients."""
        patients = compartment_patients(resource) if resource else None
        return bool(patients and patients & self.patients)


_COMPARTMENTS: OrderedDict[tuple[str, str, str, str], frozenset[str] | None] = OrderedDict()
_COMPARTMENTS_SIZE = 20_000


def stored_compartment(resource: dict) -> frozenset[str] | None:
    """compartment_patients of a stored version, remembered by (type, id, versionId, lastUpdated): a version never changes."""
    meta = resource.get("meta") or {}
    version, updated = meta.get("versionId"), meta.get("lastUpdated")
    if not (isinstance(version, str) and isinstance(updated, str)):
        return compartment_patients(resource)
    key = (str(resource.get("resourceType")), str(resource.get("id")), version, updated)
    try:
        return _COMPARTMENTS[key]
    except KeyError:
        pass
    found = _COMPARTMENTS[key] = compartment_patients(resource)
    if len(_COMPARTMENTS) > _COMPARTMENTS_SIZE:
        _COMPARTMENTS.popitem(last=False)  # oldest first; under threads a lost race only recomputes
    return found


def current_guard() -> Guard | None:
    """The guard of the running FHIR handler, or None (no request, no authentication, or outside a handler)."""
    return g.get("access_guard") if has_request_context() else None


def _hidden(resource_type: str, resource_id: str) -> NotFound:
    """The same answer as for a resource that does not exist: a patient token learns nothing of other records."""
    return NotFound(f"{resource_type}/{resource_id} is not known")


class ConfinedRepository(Repository):
    """The app's repository as FHIR handlers see it: a pass-through, except while a guarded handler runs."""

    def __init__(self, inner: Repository) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        """Anything beyond the Repository interface (the store's own helpers) passes through, except to a
        patient-bound handler: what this class does not confine, such a caller does not get."""
        if name == "inner":
            raise AttributeError(name)  # not yet set (copy, unpickling): never recurse
        guard = current_guard()
        if guard is not None and guard.patient is not None:
            raise Forbidden(f"Storage operation {name!r} is not available to a token bound to one patient")
        return getattr(self.inner, name)

    def close(self) -> None:
        self.inner.close()

    # -- reads --

    def read(self, resource_type: str, resource_id: str) -> Version:
        guard = current_guard()
        if guard is None:
            return self.inner.read(resource_type, resource_id)
        guard.require(resource_type, "r")
        try:
            version = self.inner.read(resource_type, resource_id)
        except Gone:
            self._visible_instance(guard, resource_type, resource_id)
            raise
        if version.resource is not None and not guard.may_see(version.resource):
            raise _hidden(resource_type, resource_id)
        return version

    def vread(self, resource_type: str, resource_id: str, version_id: int) -> Version:
        guard = current_guard()
        if guard is None:
            return self.inner.vread(resource_type, resource_id, version_id)
        guard.require(resource_type, "r")
        version = self.inner.vread(resource_type, resource_id, version_id)
        if version.resource is None:
            self._visible_instance(guard, resource_type, resource_id)
        elif not guard.may_see(version.resource):
            raise _hidden(resource_type, resource_id)
        return version

    def _visible_instance(self, guard: Guard, resource_type: str, resource_id: str) -> None:
        """404 unless the instance's latest content (a deleted one's last version) is visible to the token."""
        if not guard.bound(resource_type, "rs"):
            return
        _total, versions = self.inner.history(resource_type, resource_id, count=1000)
        latest = next((version.resource for version in versions if version.resource is not None), None)
        if latest is None or not guard.may_see(latest):
            raise _hidden(resource_type, resource_id)

    def history(self, resource_type: str | None = None, resource_id: str | None = None, *,
                since: datetime | None = None, count: int = 50, offset: int = 0) -> tuple[int, list[Version]]:
        guard = current_guard()
        if guard is None:
            return self.inner.history(resource_type, resource_id, since=since, count=count, offset=offset)
        if resource_id is None and (resource_type is None or guard.bound(resource_type, "s")):
            if resource_type is None and not SYSTEM_HISTORY.met_by(guard.grants):
                raise Forbidden(f"System history needs {SYSTEM_HISTORY.describe()}")
            if resource_type is not None:
                raise Forbidden(f"History of every {resource_type} is not available to a token bound to one patient")
        if resource_type is not None and resource_id is not None:
            self._visible_instance(guard, resource_type, resource_id)
        total, versions = self.inner.history(resource_type, resource_id, since=since, count=count, offset=offset)
        return total, [version for version in versions if version.resource is None or guard.may_see(version.resource)]

    def search(self, query: SearchQuery) -> SearchResult:
        guard = current_guard()
        if guard is None:
            return self.inner.search(query)
        resource_type = query.resource_type
        if not (guard.grants.allows(resource_type, "s") or guard.grants.allows(resource_type, "r")):
            return SearchResult(total=0)  # a type the token cannot see adds nothing to an operation's result
        if guard.bound(resource_type, "rs"):
            query = confine(query, guard.patients)
        result = self.inner.search(query)
        # Matches are confined by the query itself (and checked again on the way out); included resources may be anyone's.
        result.included = [resource for resource in result.included if guard.may_see(resource)]
        return result

    # -- writes --

    def _check_write(self, guard: Guard, resource_type: str, letter: str, resource: dict | None, resource_id: str | None) -> None:
        """403 unless a scope allows the write and, when patient-bound, the new content and the current one are the patients'."""
        guard.require(resource_type, letter)
        if not guard.bound(resource_type, letter):
            return
        if resource is not None and not guard.owns(resource):
            raise Forbidden(f"A patient/ scope may only write {resource_type} resources in its patient's compartment")
        if resource_id is not None:
            try:
                current = self.inner.read(resource_type, resource_id).resource
            except (NotFound, Gone):
                return
            if not guard.owns(current):
                raise Forbidden(f"{resource_type}/{resource_id} is outside the compartment of the token's patient")

    def create(self, resource: dict, *, if_none_exist: SearchQuery | None = None) -> WriteOutcome:
        guard = current_guard()
        if guard is not None:
            resource_type = str(resource.get("resourceType"))
            self._check_write(guard, resource_type, "c", resource, None)
            if if_none_exist is not None and guard.bound(resource_type, "c"):
                if_none_exist = confine(if_none_exist, guard.patients)
        return self.inner.create(resource, if_none_exist=if_none_exist)

    def update(self, resource: dict, *, if_match: int | None = None) -> WriteOutcome:
        guard = current_guard()
        if guard is not None:
            self._check_write(guard, str(resource.get("resourceType")), "u", resource, str(resource.get("id")))
        return self.inner.update(resource, if_match=if_match)

    def delete(self, resource_type: str, resource_id: str) -> Version | None:
        guard = current_guard()
        if guard is not None:
            self._check_write(guard, resource_type, "d", None, resource_id)
        return self.inner.delete(resource_type, resource_id)

    def transaction(self, entries: list[BundleEntryRequest]) -> list[WriteOutcome | Version | SearchResult | None]:
        guard = current_guard()
        if guard is None:
            return self.inner.transaction(entries)
        checked = [self._check_entry(guard, entry) for entry in entries]
        results = self.inner.transaction(checked)
        for result in results:
            if isinstance(result, SearchResult):
                result.matches = [resource for resource in result.matches if guard.may_see(resource)]
                result.included = [resource for resource in result.included if guard.may_see(resource)]
        return results

    def _check_entry(self, guard: Guard, entry: BundleEntryRequest) -> BundleEntryRequest:
        """One transaction/batch entry: its scope letter, patient binding, and its search criteria confined (bundle.html#transaction)."""
        path, _, criteria = entry.url.partition("?")
        segments = path.split("/")
        resource_type = segments[0]
        resource_id = segments[1] if len(segments) > 1 and segments[1] else None
        if entry.method == "GET":
            letter = "r" if resource_id else "s"
            guard.require(resource_type, letter)
            if resource_id and guard.bound(resource_type, "rs"):
                self._visible_instance_or_missing(guard, resource_type, resource_id)
        else:
            letter = ENTRY_LETTERS[entry.method]
            self._check_write(guard, resource_type, letter, entry.resource, resource_id)
        if not guard.bound(resource_type, letter):
            return entry
        if criteria:
            entry = replace(entry, url=f"{path}?{confine_criteria(resource_type, criteria, guard.patients)}")
        if entry.if_none_exist:
            entry = replace(entry, if_none_exist=confine_criteria(resource_type, entry.if_none_exist.split("?", 1)[-1], guard.patients))
        return entry

    def _visible_instance_or_missing(self, guard: Guard, resource_type: str, resource_id: str) -> None:
        try:
            current = self.inner.read(resource_type, resource_id).resource
        except NotFound:
            return
        except Gone:
            self._visible_instance(guard, resource_type, resource_id)
            return
        if current is not None and not guard.may_see(current):
            raise _hidden(resource_type, resource_id)


# --- confining a search to a patient compartment -----------------------------------------------


def _patient_values(values: tuple[SearchValue, ...], only_patient_target: bool) -> set[str] | None:
    """The Patient ids a reference filter's values name, or None when one value is not a Patient reference."""
    found = set()
    for value in values:
        kind, slash, resource_id = value.raw.rstrip("/").rpartition("/")
        if slash and kind.rpartition("/")[2] == "Patient" and resource_id:
            found.add(resource_id)
        elif not slash and only_patient_target and value.raw:
            found.add(value.raw)
        else:
            return None
    return found


def _confining(query: SearchQuery, patients: frozenset[str]) -> str | None:
    """The name of a filter already confining `query` to `patients` (a compartment parameter naming only them), if any."""
    names = compartment_parameters().get(query.resource_type, ())
    for search in query.filters:
        if query.resource_type == "Patient" and search.name == "_id" and not search.modifier:
            ids = {value.raw for value in search.values}
        elif search.name in names and not search.modifier and not search.chain and search.target_type in (None, "Patient"):
            spec = parameter(query.resource_type, search.name)
            ids = _patient_values(search.values, spec is not None and tuple(spec.targets) == ("Patient",)) or set()
        else:
            continue
        if ids and ids <= patients:
            return search.name
    return None


def confine(query: SearchQuery, patients: frozenset[str]) -> SearchQuery:
    """`query` limited to the compartments of `patients`: a compartment filter is added unless one already confines it.

    Chained parameters that could reach another patient's records (through a reference other than the one that
    confines the search, to a type in the Patient compartment) are refused with 403."""
    resource_type = query.resource_type
    confining = _confining(query, patients)
    added: tuple[SearchFilter, ...] = ()
    if confining is None:
        if resource_type == "Patient":
            confining = "_id"
            added = (SearchFilter("_id", "token", tuple(SearchValue(patient) for patient in sorted(patients))),)
        else:
            confining = binding_parameter(resource_type)
            if confining is not None:
                added = (compartment_filter(resource_type, confining, sorted(patients)),)
    reachable = set(compartment_parameters()) | {"Patient"}
    for search in query.filters:
        if not search.chain or search.name == confining:
            continue
        spec = parameter(resource_type, search.name)
        targets = {search.target_type} if search.target_type else set(spec.targets if spec else ())
        if targets & reachable:
            raise Forbidden(f"Chained search through '{search.name}' may reach other patients' records; "
                            "a token bound to one patient may chain only through the reference to its patient")
    return replace(query, filters=query.filters + added) if added else query


def confine_criteria(resource_type: str, criteria: str, patients: frozenset[str]) -> str:
    """Search criteria of a transaction entry (a URL query) confined like `confine`; the parsed query decides."""
    pairs = parse_qsl(criteria, keep_blank_values=True)
    query = parse_search(resource_type, pairs)
    confined = confine(query, patients)
    if confined is query:
        return criteria
    extra = confined.filters[-1]
    return urlencode([*pairs, (extra.name, ",".join(value.raw for value in extra.values))])


def outgoing_resources(body: Any) -> list[dict]:
    """Every resource in a response body: the body itself, or the resources of a Bundle's entries, recursively (bundle.html)."""
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        return []
    if body["resourceType"] in CONTAINER_TYPES:
        found: list[dict] = []
        for entry in body.get("entry") or []:
            if isinstance(entry, dict):
                found += outgoing_resources(entry.get("resource"))
        return found
    return [] if body["resourceType"] in NOT_PATIENT_DATA else [body]


def last_line(response: Response, guard: Guard) -> Response:
    """For a patient-scoped caller: refuse (403) an answer holding any resource the token may not see."""
    if guard.patient is None or not response.is_json or response.status_code >= 300:
        return response
    body = orjson.loads(response.get_data())
    refused = [resource for resource in outgoing_resources(body) if not guard.may_see(resource)]
    if not refused:
        return response
    log.error("refused an answer holding %d resource(s) outside the token's rights (types: %s)",
              len(refused), ", ".join(sorted({str(resource.get("resourceType")) for resource in refused})))
    raise Forbidden("The answer would include records outside what this token may see")
