"""Fixtures for the FHIR API tests: an app on a temporary SQLite store and its test client."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.app import create_app
from gateway.fhir.context import REPOSITORY_KEY


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "DB": f"sqlite:///{tmp_path / 'api.db'}"})
    yield app
    app.extensions[REPOSITORY_KEY].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
