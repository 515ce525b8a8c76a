"""Options shared by several CLI commands."""
from __future__ import annotations

import click

from gateway.settings import Settings

db_option = click.option(
    "--db", default=Settings.db, show_default=True, envvar="PULSEBRIDGE_DB", help="sqlite:///PATH or postgresql://..."
)
"""`--db URL` (env PULSEBRIDGE_DB): the store a command opens; default as in gateway.settings."""
