"""`pulsebridge serve`: option handling and the app/server split that other listeners plug into (DESIGN.md)."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.serve import ServeOptions, build_app, worker_count
from gateway.settings import SETTINGS_KEY, SettingsError


def test_serve_rejects_an_address_without_port() -> None:
    result = CliRunner().invoke(main, ["serve", "--http", "localhost"])
    assert result.exit_code == 2 and "HOST:PORT" in result.output


def test_serve_help_names_the_defaults() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "127.0.0.1:8080" in result.output and "sqlite:///pulsebridge.db" in result.output


def test_worker_count_defaults_to_one_process_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULSEBRIDGE_WORKERS", raising=False)
    monkeypatch.delenv("PULSEBRIDGE_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert worker_count(ServeOptions()) == (2, 4)
    assert worker_count(ServeOptions(workers=3, threads=1)) == (3, 1)
    monkeypatch.setenv("PULSEBRIDGE_WORKERS", "5")
    assert worker_count(ServeOptions())[0] == 5


def test_build_app_serves_the_named_store(tmp_path: Path) -> None:
    app = build_app(ServeOptions(db=f"sqlite:///{tmp_path / 'served.db'}", settings={"PAGE_SIZE": 7}))
    assert app.extensions[SETTINGS_KEY].page_size == 7
    assert app.test_client().get("/fhir/Patient").get_json()["total"] == 0
    assert (tmp_path / "served.db").exists()
    assert app.test_client().get("/healthz").status_code == 200


def test_settings_come_from_pulsebridge_environment_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.app import create_app

    monkeypatch.setenv("PULSEBRIDGE_DB", f"sqlite:///{tmp_path / 'from-env.db'}")
    monkeypatch.setenv("PULSEBRIDGE_PAGE_SIZE", "3")
    app = create_app()
    assert app.extensions[SETTINGS_KEY].page_size == 3 and (tmp_path / "from-env.db").exists()
    assert create_app({"PAGE_SIZE": 9, "DB": "memory://"}).extensions[SETTINGS_KEY].page_size == 9
    assert create_app({"PAGE_SIZE": "12", "DB": "memory://"}).extensions[SETTINGS_KEY].page_size == 12
    with pytest.raises(SettingsError, match="PAGE_SIZE"):
        create_app({"PAGE_SIZE": "none", "DB": "memory://"})


def test_serve_names_a_bad_setting_before_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSEBRIDGE_PAGE_SIZE", "lots")
    result = CliRunner().invoke(main, ["serve", "--mllp", "off"])
    assert result.exit_code == 2
    assert "PULSEBRIDGE_PAGE_SIZE" in result.output and "positive whole number" in result.output


def test_ingest_over_http_uses_the_apps_settings_and_store() -> None:
    from gateway.app import create_app
    from gateway.fhir.context import STORE_KEY
    from gateway.hl7_http import ingestor

    app = create_app({"DB": "memory://", "TIMEZONE": "+08:00", "AUTH_SECRET": "s" * 32})
    receiver = ingestor(app)
    assert receiver.settings.timezone.utcoffset(None).total_seconds() == 8 * 3600
    assert receiver.repository is app.extensions[STORE_KEY]  # not the per-caller confined view
