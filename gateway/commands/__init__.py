"""Registry of CLI commands; each lives in its own module and imports heavy dependencies lazily."""
from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
