"""UCUM case-sensitive unit expressions: a validating parser of the UCUM grammar.

Grammar (The Unified Code for Units of Measure, §2.1-§2.6 and its BNF):
    main-term   ::= "/" term | term
    term        ::= term "." component | term "/" component | component
    component   ::= annotatable annotation | annotatable | annotation | factor | "(" term ")"
    annotatable ::= simple-unit exponent | simple-unit
    simple-unit ::= ATOM | PREFIX ATOM(metric)
    exponent    ::= ["+" | "-"] digits          factor ::= digits
    annotation  ::= "{" ASCII 33-126 except curly braces "}"
Atoms and prefixes come from data/ucum.json (ucum-essence.xml via @lhncbc/ucum-lhc).
Square-bracketed parts belong to the atom ("[in_i'H2O]", "B[10.nV]"), so they are never split.
"""
from __future__ import annotations

from functools import cache, lru_cache

from terminology._data import load

UCUM_SYSTEM = "http://unitsofmeasure.org"


class UcumSyntaxError(ValueError):
    """A unit string that is not a valid UCUM case-sensitive expression."""


@cache
def _tables() -> tuple[dict[str, dict], tuple[str, ...]]:
    data = load("ucum.json")
    # Longest prefix first so "da" (deka) is tried before "d" (deci).
    prefixes = tuple(sorted(data["prefixes"], key=len, reverse=True))
    return data["atoms"], prefixes


def _simple_unit(symbol: str) -> bool:
    atoms, prefixes = _tables()
    if symbol in atoms:
        return True
    for prefix in prefixes:
        if symbol.startswith(prefix) and len(symbol) > len(prefix):
            atom = atoms.get(symbol[len(prefix):])
            if atom is not None and atom["metric"]:
                return True
    return False


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> UcumSyntaxError:
        return UcumSyntaxError(f"{why} at position {self.pos} in {self.text!r}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def main_term(self) -> None:
        if self.peek() == "/":
            self.pos += 1
        self.term()
        if self.pos != len(self.text):
            raise self.fail("unexpected character")

    def term(self) -> None:
        self.component()
        while self.peek() in (".", "/") and self.pos < len(self.text):
            self.pos += 1
            self.component()

    def component(self) -> None:
        char = self.peek()
        if char == "(":
            self.pos += 1
            self.term()
            if self.peek() != ")":
                raise self.fail("missing ')'")
            self.pos += 1
            return
        if char == "{":
            self.annotation()
            return
        token = self.symbol_token()
        if not token:
            raise self.fail("expected a unit")
        if token.isdigit():
            # A factor takes neither exponent nor annotation (BNF); "10*3" is atom 10* + exponent.
            return
        unit, exponent = _split_exponent(token)
        if not unit or not _simple_unit(unit):
            raise UcumSyntaxError(f"unknown unit {unit or token!r} in {self.text!r}")
        if exponent is not None and exponent.lstrip("+-") == "":
            raise self.fail("bad exponent")
        if self.peek() == "{":
            self.annotation()

    def symbol_token(self) -> str:
        start = self.pos
        depth = 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "[":
                depth += 1
            elif char == "]":
                if depth == 0:
                    raise self.fail("unbalanced ']'")
                depth -= 1
            elif depth == 0 and char in "./(){}":
                break
            elif not (33 <= ord(char) <= 126):
                raise self.fail("character outside printable ASCII")
            self.pos += 1
        if depth:
            raise self.fail("unbalanced '['")
        return self.text[start:self.pos]

    def annotation(self) -> None:
        end = self.text.find("}", self.pos + 1)
        if end < 0:
            raise self.fail("unterminated annotation")
        body = self.text[self.pos + 1:end]
        if "{" in body or any(not (33 <= ord(c) <= 126) for c in body):
            raise self.fail("bad annotation")
        self.pos = end + 1


def _split_exponent(token: str) -> tuple[str, str | None]:
    """'m2' -> ('m', '2'), 's-1' -> ('s', '-1'), '10*3' -> ('10*', '3'); brackets end atoms."""
    end = len(token)
    while end > 0 and token[end - 1].isdigit():
        end -= 1
    if end == len(token):
        return token, None
    if end > 0 and token[end - 1] in "+-":
        end -= 1
    return token[:end], token[end:]


@lru_cache(maxsize=4096)
def _check(code: str) -> str | None:
    """None when valid, else the reason (cached: lab feeds repeat a few hundred units)."""
    if not code:
        return "empty unit"
    try:
        _Parser(code).main_term()
    except UcumSyntaxError as exc:
        return str(exc)
    return None


def validate_ucum(code: str) -> None:
    """Raise UcumSyntaxError unless code is a valid UCUM case-sensitive expression."""
    reason = _check(code)
    if reason is not None:
        raise UcumSyntaxError(reason)


def is_ucum(code: str) -> bool:
    """Whether code is a valid UCUM case-sensitive expression (UCUM grammar, §2)."""
    return _check(code) is None
