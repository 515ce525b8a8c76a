"""SMART App Launch v2 resource scopes and the permission check built on them (SMART v2 scopes-and-launch-context.html).

A scope reads `context/Type.permissions[?param=value]`: context is patient, user or system; Type is a
FHIR resource type or `*`; permissions are the letters c r u d s in that order. SMART v1 suffixes
`.read`, `.write` and `.*` are accepted as their v2 equivalents. Scopes that are not resource scopes
(`openid`, `fhirUser`, `launch/patient`, `offline_access` ...) grant no resource access.

Query restrictions (`patient/Observation.rs?category=laboratory`, SMART v2 "finer-grained resource
constraints") are parsed but not honoured: such a scope grants nothing, and a request that only such a
scope would allow is refused naming it (`Grants.restricted`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl

CONTEXTS = ("patient", "user", "system")
LETTERS = "cruds"  # create, read, update, delete, search: the order SMART v2 requires
# SMART v1 permission suffixes and the v2 letters they stand for (scopes-and-launch-context.html#scopes-for-requesting-fhir-resources).
V1_ALIASES = {"read": "rs", "write": "cud", "*": "cruds"}
# Types that a wildcard (`*`) never grants: reading the audit trail needs a scope that names it.
EXPLICIT_ONLY_TYPES = frozenset({"AuditEvent"})

_SCOPE = re.compile(r"^(patient|user|system)/([A-Z][A-Za-z]*|\*)\.([a-z*]+)(?:\?(.*))?$")
_V2_LETTERS = re.compile(r"^c?r?u?d?s?$")


@dataclass(frozen=True)
class Scope:
    """One parsed resource scope (SMART v2 scope syntax)."""

    text: str
    context: str  # patient, user or system
    resource_type: str  # a resource type or "*"
    letters: frozenset[str]
    restrictions: tuple[tuple[str, str], ...] = ()  # ?param=value pairs

    def covers(self, resource_type: str, letter: str) -> bool:
        """Whether this scope names `resource_type` and `letter`, ignoring any query restriction."""
        if letter not in self.letters:
            return False
        if self.resource_type == "*":
            return resource_type not in EXPLICIT_ONLY_TYPES
        return self.resource_type == resource_type


class ScopeError(ValueError):
    """A scope string that looks like a resource scope but does not follow the SMART syntax."""


def parse_scope(text: str) -> Scope | None:
    """A resource scope, None for other scopes (openid, launch ...); ScopeError for a malformed resource scope."""
    match = _SCOPE.match(text)
    if match is None:
        if text.split("/", 1)[0] in CONTEXTS and "." in text:
            raise ScopeError(f"scope {text!r} is not context/Type.permissions (SMART v2)")
        return None
    context, resource_type, permissions, query = match.groups()
    letters = V1_ALIASES.get(permissions, permissions)
    if not letters or not _V2_LETTERS.match(letters):
        raise ScopeError(f"scope {text!r}: permissions must be letters of 'cruds' in that order, or read/write/*")
    restrictions = tuple(parse_qsl(query, keep_blank_values=True)) if query is not None else ()
    if query is not None and not restrictions:
        raise ScopeError(f"scope {text!r}: an empty query restriction")
    return Scope(text, context, resource_type, frozenset(letters), restrictions)


@lru_cache(maxsize=256)  # read twice per request (the access check, then the Guard) and the same for every request of a token
def parse_scopes(text: str) -> tuple[Scope, ...]:
    """Every resource scope in a space-separated `scope` claim (RFC 6749 section 3.3); malformed ones raise ScopeError."""
    found = (parse_scope(item) for item in text.split())
    return tuple(scope for scope in found if scope is not None)


@dataclass(frozen=True)
class Grants:
    """What a token's scopes allow; the answer to "may this caller do `letter` on `resource_type`"."""

    scopes: tuple[Scope, ...]

    def contexts(self, resource_type: str, letter: str) -> frozenset[str]:
        """The contexts (patient, user, system) whose unrestricted scopes allow `letter` on `resource_type`."""
        return frozenset(s.context for s in self.scopes if not s.restrictions and s.covers(resource_type, letter))

    def allows(self, resource_type: str, letter: str, contexts: tuple[str, ...] = CONTEXTS) -> bool:
        """Whether some unrestricted scope in one of `contexts` allows `letter` on `resource_type`."""
        return bool(self.contexts(resource_type, letter) & frozenset(contexts))

    def wildcard(self, letters: str, contexts: tuple[str, ...]) -> bool:
        """Whether unrestricted `*` scopes in `contexts` hold every letter of `letters` (rights over every type)."""
        held = {letter for s in self.scopes if s.resource_type == "*" and not s.restrictions and s.context in contexts for letter in s.letters}
        return set(letters) <= held

    def restricted(self, resource_type: str, letter: str) -> Scope | None:
        """A query-restricted scope that would have allowed this, to name in the refusal (restrictions are not honoured)."""
        return next((s for s in self.scopes if s.restrictions and s.covers(resource_type, letter)), None)


@dataclass(frozen=True)
class Requirement:
    """The rights a request needs: `letters` on `resource_type` ("*": a wildcard scope) from scopes of `contexts`."""

    resource_type: str
    letters: str
    contexts: tuple[str, ...] = CONTEXTS

    def met_by(self, grants: Grants) -> bool:
        """Whether the token's grants meet this requirement (a wildcard requirement needs `*` scopes)."""
        if self.resource_type == "*":
            return grants.wildcard(self.letters, self.contexts)
        return all(grants.allows(self.resource_type, letter, self.contexts) for letter in self.letters)

    def describe(self) -> str:
        """The scopes that would do, as SMART scope strings (RFC 6750 section 3 scope attribute)."""
        return " ".join(f"{context}/{self.resource_type}.{self.letters}" for context in self.contexts)


# System history shows every type: it needs a wildcard scope that is not bound to a patient.
SYSTEM_HISTORY = Requirement("*", "s", ("user", "system"))
