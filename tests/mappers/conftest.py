"""Fixtures for the mapper tests."""
from __future__ import annotations

import pytest

from mapper_helpers import er7
from mappers import convert


@pytest.fixture
def convert_er7():
    """Convert a message given as segment strings."""

    def run(*segments: str):
        return convert(er7(*segments))

    return run
