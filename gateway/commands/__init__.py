"""Registry of CLI commands; each lives in its own module and imports heavy dependencies lazily."""
from __future__ import annotations

import click

from gateway.commands.convert import convert
from gateway.commands.deadletters import deadletters
from gateway.commands.ingest import ingest
from gateway.commands.inspect import inspect
from gateway.commands.send import send
from gateway.commands.serve import serve
from gateway.commands.token import token
from gateway.commands.validate import validate

COMMANDS: list[click.Command] = [serve, convert, ingest, send, inspect, validate, deadletters, token]
