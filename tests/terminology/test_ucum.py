"""UCUM grammar check (atoms, prefixes, exponents, annotations, parentheses)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminology import UcumSyntaxError, is_ucum, validate_ucum
from terminology._data import load

VALID = ["mm[Hg]", "%", "10*3/uL", "10^9/L", "kg", "kg/m2", "g/dL", "mg/dl", "/min", "Cel", "[degF]",
         "mmol/L", "umol/L", "meq/L", "[IU]/L", "m[IU]/mL", "U/L", "fL", "pg", "s-1", "m+2", "{score}",
         "{cells}/uL", "mL/min/{1.73_m2}", "(mg/dL)/h", "mg/(24.h)", "1", "1/min", "[pH]", "cm[H2O]",
         "[in_i'H2O]", "B[10.nV]", "ug/kg/min", "kat/kg", "dam", "mL{total}"]
INVALID = ["mmHg", "beats/min", "bpm", "degF", "mcg", "IU/L", "mEq/L", "", "2m", "mm[Hg", "{x", "x}",
           "mg//dL", "mg/", "(mg/dL", "kg.", "µg/L", "°C", "m{a{b}}", "hrs", "{a}2"]


@pytest.mark.parametrize("code", VALID)
def test_valid(code: str) -> None:
    assert is_ucum(code)


@pytest.mark.parametrize("code", INVALID)
def test_invalid(code: str) -> None:
    assert not is_ucum(code)
    with pytest.raises(UcumSyntaxError):
        validate_ucum(code)


def test_every_atom_parses_and_metric_ones_take_prefixes() -> None:
    atoms = load("ucum.json")["atoms"]
    assert len(atoms) > 300
    for symbol, atom in atoms.items():
        assert is_ucum(symbol), symbol
        if atom["metric"]:
            assert is_ucum("k" + symbol), symbol


def test_non_metric_atoms_take_no_prefix() -> None:
    assert is_ucum("[degF]") and not is_ucum("k[degF]")
    assert is_ucum("h") and not is_ucum("kh")


_ATOMS = sorted(load("ucum.json")["atoms"])


@given(st.sampled_from(_ATOMS), st.sampled_from(_ATOMS), st.sampled_from(["/", "."]), st.integers(1, 9))
def test_terms_of_atoms_are_valid(left: str, right: str, op: str, exponent: int) -> None:
    # An atom ending in a digit inside brackets still takes an exponent after the bracket.
    assert is_ucum(f"{left}{op}{right}")
    if not right[-1].isdigit():
        assert is_ucum(f"{left}{op}{right}{exponent}")
