"""The `pulsebridge` command line (DESIGN.md, external contract): one click group, one module per command."""
from __future__ import annotations

import click

from gateway.commands import COMMANDS
from gateway.runtime import tune_collector


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "PULSEBRIDGE"})
@click.version_option(package_name="pulsebridge")
def main() -> None:
    """PulseBridge: HL7 v2 and device data in, FHIR R4 out."""
    tune_collector()


for _command in COMMANDS:
    main.add_command(_command)
