"""R4 invariants that the fhir.resources models do not enforce and mappers commonly break.

Each check is named by its constraint key; severity and human text come from the R4 StructureDefinitions
(data/r4-invariants.json). Datatype invariants apply wherever the datatype occurs.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from conformance.definitions import invariant
from conformance.narrative import check_narrative_div
from conformance.outcome import Issue
from conformance.structure import ResourceFrame, Walk

# A check yields (expression suffix, detail) for each violation; the suffix is appended to the node's expression.
Check = Callable[[dict[str, Any]], Iterator[tuple[str, str]]]


def invariant_issue(key: str, expression: str, detail: str = "") -> Issue:
    """The issue for a violated R4 constraint `key`, with its severity and human text from the definitions."""
    rule = invariant(key)
    text = rule["human"] + (f" ({detail})" if detail else "")
    return Issue(rule["severity"], "invariant", expression, text, key)


# --- datatypes --------------------------------------------------------------------------------------------------

def _per_1(period: dict[str, Any]) -> Iterator[tuple[str, str]]:
    start, end = period.get("start"), period.get("end")
    if isinstance(start, str) and isinstance(end, str) and compare_date_times(start, end) == 1:
        yield "", f"start {start} is after end {end}"


def _cpt_2(contact: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "value" in contact and "system" not in contact:
        yield "", "value without system"


def _qty_3(quantity: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "code" in quantity and "system" not in quantity:
        yield "", f"code {quantity.get('code')!r} without system"


def _att_1(attachment: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "data" in attachment and "contentType" not in attachment:
        yield "", "data without contentType"


def _ext_1(extension: dict[str, Any]) -> Iterator[tuple[str, str]]:
    has_value = any(key.startswith("value") for key in extension)
    if has_value and "extension" in extension:
        yield "", "both extension and value[x]"
    elif not has_value and "extension" not in extension:
        yield "", "neither extension nor value[x]"


def _rng_2(range_: dict[str, Any]) -> Iterator[tuple[str, str]]:
    low, high = range_.get("low"), range_.get("high")
    if isinstance(low, dict) and isinstance(high, dict):
        low_value, high_value = low.get("value"), high.get("value")
        same_unit = low.get("code", low.get("unit")) == high.get("code", high.get("unit"))
        if isinstance(low_value, (int, float)) and isinstance(high_value, (int, float)) and same_unit \
                and low_value > high_value:
            yield "", f"low {low_value} > high {high_value}"


DATATYPE_CHECKS: dict[str, list[tuple[str, Check]]] = {
    "Period": [("per-1", _per_1)],
    "ContactPoint": [("cpt-2", _cpt_2)],
    "Quantity": [("qty-3", _qty_3)], "Age": [("qty-3", _qty_3)], "Count": [("qty-3", _qty_3)],
    "Distance": [("qty-3", _qty_3)], "Duration": [("qty-3", _qty_3)], "SimpleQuantity": [("qty-3", _qty_3)],
    "MoneyQuantity": [("qty-3", _qty_3)],
    "Attachment": [("att-1", _att_1)],
    "Extension": [("ext-1", _ext_1)],
    "Range": [("rng-2", _rng_2)],
}


# --- resources --------------------------------------------------------------------------------------------------

def _value_keys(element: dict[str, Any]) -> list[str]:
    return [key for key in element if key.startswith("value") and key != "value"]


def _obs_6(observation: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "dataAbsentReason" in observation and _value_keys(observation):
        yield ".dataAbsentReason", f"with {_value_keys(observation)[0]}"
    for index, component in enumerate(_list(observation.get("component"))):
        if isinstance(component, dict) and "dataAbsentReason" in component and _value_keys(component):
            yield f".component[{index}].dataAbsentReason", f"with {_value_keys(component)[0]}"


def _obs_7(observation: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if not _value_keys(observation):
        return
    codes = _codings(observation.get("code"))
    for index, component in enumerate(_list(observation.get("component"))):
        if isinstance(component, dict) and codes & _codings(component.get("code")):
            yield f".component[{index}].code", "component code equals Observation.code while Observation has a value"


def _obs_3(observation: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for index, reference_range in enumerate(_list(observation.get("referenceRange"))):
        if isinstance(reference_range, dict) and not {"low", "high", "text"} & reference_range.keys():
            yield f".referenceRange[{index}]", "no low, high or text"


def _pat_1(patient: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for index, contact in enumerate(_list(patient.get("contact"))):
        if isinstance(contact, dict) and not {"name", "telecom", "address", "organization"} & contact.keys():
            yield f".contact[{index}]", "no name, telecom, address or organization"


def _status_code(concept: Any) -> set[str]:
    return {code for _, code in _codings(concept)}


def _ait_1(allergy: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "clinicalStatus" not in allergy and "entered-in-error" not in _status_code(allergy.get("verificationStatus")):
        yield "", "clinicalStatus missing"


def _ait_2(allergy: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "clinicalStatus" in allergy and "entered-in-error" in _status_code(allergy.get("verificationStatus")):
        yield ".clinicalStatus", "clinicalStatus with verificationStatus entered-in-error"


def _con_3(condition: dict[str, Any]) -> Iterator[tuple[str, str]]:
    problem_list = any(code == "problem-list-item" for category in _list(condition.get("category"))
                       for _, code in _codings(category))
    if problem_list and "clinicalStatus" not in condition \
            and "entered-in-error" not in _status_code(condition.get("verificationStatus")):
        yield "", "problem-list-item without clinicalStatus"


def _con_4(condition: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if any(key.startswith("abatement") for key in condition) and "clinicalStatus" in condition \
            and not _status_code(condition["clinicalStatus"]) & {"inactive", "resolved", "remission"}:
        yield ".clinicalStatus", "abatement present but clinicalStatus is not inactive/resolved/remission"


def _con_5(condition: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "clinicalStatus" in condition and "entered-in-error" in _status_code(condition.get("verificationStatus")):
        yield ".clinicalStatus", "clinicalStatus with verificationStatus entered-in-error"


def _app_2(appointment: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if ("start" in appointment) != ("end" in appointment):
        yield "", "only one of start and end"


def _app_3(appointment: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if appointment.get("status") not in ("proposed", "cancelled", "waitlist") \
            and not ("start" in appointment and "end" in appointment):
        yield "", f"status {appointment.get('status')!r} without start and end"


def _dom_2(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for index, contained in enumerate(_list(resource.get("contained"))):
        if isinstance(contained, dict) and "contained" in contained:
            yield f".contained[{index}].contained", "nested contained resources"


def _dom_4(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for index, contained in enumerate(_list(resource.get("contained"))):
        meta = contained.get("meta") if isinstance(contained, dict) else None
        if isinstance(meta, dict) and {"versionId", "lastUpdated"} & meta.keys():
            yield f".contained[{index}].meta", "meta.versionId or meta.lastUpdated on a contained resource"


def _dom_5(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for index, contained in enumerate(_list(resource.get("contained"))):
        meta = contained.get("meta") if isinstance(contained, dict) else None
        if isinstance(meta, dict) and "security" in meta:
            yield f".contained[{index}].meta.security", "security label on a contained resource"


RESOURCE_CHECKS: dict[str, list[tuple[str, Check]]] = {
    "Observation": [("obs-3", _obs_3), ("obs-6", _obs_6), ("obs-7", _obs_7)],
    "Patient": [("pat-1", _pat_1)],
    "AllergyIntolerance": [("ait-1", _ait_1), ("ait-2", _ait_2)],
    "Condition": [("con-3", _con_3), ("con-4", _con_4), ("con-5", _con_5)],
    "Appointment": [("app-2", _app_2), ("app-3", _app_3)],
}
DOMAIN_RESOURCE_CHECKS: list[tuple[str, Check]] = [("dom-2", _dom_2), ("dom-4", _dom_4), ("dom-5", _dom_5)]
NOT_DOMAIN_RESOURCES = frozenset({"Bundle", "Binary", "Parameters"})


def invariant_issues(walk: Walk) -> list[Issue]:
    """Issues for the datatype and resource invariants over everything the structure walk met."""
    issues: list[Issue] = []
    for type_name, checks in DATATYPE_CHECKS.items():
        for node in walk.nodes.get(type_name, ()):
            issues += _run(checks, node.value, node.expression)
    for node in walk.nodes.get("Narrative", ()):
        issues += check_narrative_div(node.value.get("div"), f"{node.expression}.div")
    for frame in walk.resources:
        checks = RESOURCE_CHECKS.get(frame.resource_type, [])
        if frame.resource_type not in NOT_DOMAIN_RESOURCES:
            checks = checks + DOMAIN_RESOURCE_CHECKS
        issues += _run(checks, frame.resource, frame.expression)
    return issues


def dom_3_issues(walk: Walk, local_references: dict[int, set[str]]) -> list[Issue]:
    """dom-3: every contained resource is referenced from elsewhere in its container (or refers to it with '#').

    `local_references` maps id(container resource) to the '#...' references found inside it.
    """
    issues: list[Issue] = []
    for frame in walk.resources:
        if frame.container is None:
            continue
        used = local_references.get(id(frame.container.resource), set())
        contained_id = frame.resource.get("id")
        if f"#{contained_id}" not in used and not _refers_to_container(frame, local_references):
            issues.append(invariant_issue("dom-3", frame.expression,
                                          f"contained resource #{contained_id} is not referenced"))
    return issues


def _refers_to_container(frame: ResourceFrame, local_references: dict[int, set[str]]) -> bool:
    return "#" in local_references.get(id(frame.resource), set())


def _run(checks: list[tuple[str, Check]], value: dict[str, Any], expression: str) -> list[Issue]:
    return [invariant_issue(key, expression + suffix, detail)
            for key, check in checks for suffix, detail in check(value)]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _codings(concept: Any) -> set[tuple[Any, Any]]:
    if not isinstance(concept, dict):
        return set()
    return {(coding.get("system"), coding.get("code")) for coding in _list(concept.get("coding"))
            if isinstance(coding, dict)}


# --- dateTime comparison (FHIRPath: different precisions may be incomparable) ------------------------------------

def compare_date_times(left: str, right: str) -> int | None:
    """-1, 0 or 1 comparing two R4 date/dateTime/instant strings; None when precisions make them incomparable."""
    a, b = _parse(left), _parse(right)
    if a is None or b is None:
        return None
    (a_time, a_precision), (b_time, b_precision) = a, b
    if a_precision != b_precision:
        precision = min(a_precision, b_precision)
        # Compare at the common precision; equal there means undetermined (FHIRPath returns empty).
        a_cut, b_cut = _truncate(a_time, precision), _truncate(b_time, precision)
        return None if a_cut == b_cut else (-1 if a_cut < b_cut else 1)
    return 0 if a_time == b_time else (-1 if a_time < b_time else 1)


def _parse(text: str) -> tuple[datetime, int] | None:
    try:
        if len(text) == 4:
            return datetime(int(text), 1, 1, tzinfo=timezone.utc), 1
        if len(text) == 7:
            return datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=timezone.utc), 2
        if len(text) == 10:
            return datetime.fromisoformat(text).replace(tzinfo=timezone.utc), 3
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc), 4
    except ValueError:
        return None


def _truncate(moment: datetime, precision: int) -> tuple[int, ...]:
    fields = (moment.year, moment.month, moment.day)
    if precision >= 4:
        return fields + (int((moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) / timedelta(microseconds=1)),)
    return fields[:precision]
