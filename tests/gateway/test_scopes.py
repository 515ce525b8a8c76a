"""SMART App Launch v2 scope parsing and the permission check (scopes-and-launch-context.html; gateway.security.scopes)."""
from __future__ import annotations

import pytest

from gateway.security.scopes import Grants, ScopeError, parse_scope, parse_scopes


@pytest.mark.parametrize(
    ("text", "context", "resource_type", "letters"),
    [
        ("patient/*.rs", "patient", "*", "rs"),
        ("user/Observation.cruds", "user", "Observation", "cruds"),
        ("system/Bundle.c", "system", "Bundle", "c"),
        ("patient/Observation.read", "patient", "Observation", "rs"),  # v1 aliases
        ("user/*.write", "user", "*", "cud"),
        ("system/*.*", "system", "*", "cruds"),
    ],
)
def test_resource_scopes_parse(text: str, context: str, resource_type: str, letters: str) -> None:
    scope = parse_scope(text)
    assert scope is not None
    assert (scope.context, scope.resource_type, scope.letters) == (context, resource_type, frozenset(letters))


@pytest.mark.parametrize("text", ["openid", "fhirUser", "launch/patient", "offline_access", "launch"])
def test_other_scopes_grant_nothing(text: str) -> None:
    assert parse_scope(text) is None


@pytest.mark.parametrize("text", ["patient/*.sr", "user/Observation.x", "system/*.rr", "patient/observation.rs", "user/*."])
def test_malformed_resource_scopes_are_errors(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(text)


def test_query_restrictions_are_parsed_but_grant_nothing() -> None:
    scope = parse_scope("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory")
    assert scope is not None and scope.restrictions == (
        ("category", "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"),)
    grants = Grants((scope,))
    assert not grants.allows("Observation", "r")
    assert grants.restricted("Observation", "r") is scope
    with pytest.raises(ScopeError, match="empty query"):
        parse_scope("patient/Observation.rs?")


def test_permission_check_by_type_and_letter() -> None:
    grants = Grants(parse_scopes("openid patient/Observation.rs user/Patient.r system/*.c"))
    assert grants.allows("Observation", "r") and grants.allows("Observation", "s")
    assert not grants.allows("Observation", "u")
    assert grants.allows("Patient", "r") and not grants.allows("Patient", "s")
    assert grants.allows("Encounter", "c") and not grants.allows("Encounter", "r")
    assert grants.contexts("Observation", "r") == {"patient"}
    assert grants.contexts("Patient", "r") == {"user"}
    assert not grants.allows("Observation", "r", ("user", "system"))


def test_wildcards_never_grant_audit_events() -> None:
    grants = Grants(parse_scopes("patient/*.cruds user/*.cruds system/*.*"))
    assert grants.allows("Observation", "r")
    assert not grants.allows("AuditEvent", "r") and not grants.allows("AuditEvent", "s")
    explicit = Grants(parse_scopes("user/AuditEvent.rs"))
    assert explicit.allows("AuditEvent", "s") and not explicit.allows("AuditEvent", "c")


def test_wildcard_rights_need_wildcard_scopes_holding_every_letter() -> None:
    assert Grants(parse_scopes("system/*.cruds")).wildcard("cruds", ("system",))
    assert Grants(parse_scopes("system/*.*")).wildcard("cruds", ("system",))
    assert Grants(parse_scopes("system/*.rs system/*.cud")).wildcard("cruds", ("system",))
    assert not Grants(parse_scopes("system/*.rs system/Patient.cud")).wildcard("cruds", ("system",))
    assert not Grants(parse_scopes("user/*.cruds")).wildcard("cruds", ("system",))
    assert not Grants(parse_scopes("system/Patient.cruds")).wildcard("c", ("system",))
