"""`pulsebridge send PATH ... --to HOST:PORT`: an MLLP client that prints each ACK (DESIGN.md)."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from gateway.address import split_address
from gateway.commands.inputs import iter_inputs

if TYPE_CHECKING:
    import ssl

    from adapters.hl7v2.message import Message

_ACCEPTED = {"AA", "CA"}
_FILE = click.Path(exists=True, dir_okay=False, readable=True)


def _host_port(value: str) -> tuple[str, int]:
    try:
        return split_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _tls_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    from adapters.hl7v2.mllp_client import client_tls_context

    if key and not cert:
        raise click.UsageError("--key needs --cert")
    try:
        return client_tls_context(ca, cert, key)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: a bad PEM file, a key that does not match
        raise click.UsageError(f"TLS set-up failed: {exc}") from None


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--to", "target", required=True, help="Receiver as HOST:PORT (MLLP).")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for each ACK.")
@click.option("--retries", default=3, show_default=True, help="Reconnect-and-resend attempts per message.")
@click.option("--verbose", "-v", is_flag=True, help="Print every ACK in full, one segment per line.")
@click.option("--tls", is_flag=True, help="MLLP over TLS; the receiver's certificate is verified (--ca, else the system CAs).")
@click.option("--ca", type=_FILE, help="PEM CA bundle that signed the receiver's certificate (implies --tls).")
@click.option("--cert", type=_FILE, help="PEM client certificate, for receivers that require one (implies --tls).")
@click.option("--key", type=_FILE, help="PEM private key of --cert (if not inside the --cert file).")
def send(paths: tuple[str, ...], target: str, timeout: float, retries: int, verbose: bool,
         tls: bool, ca: str | None, cert: str | None, key: str | None) -> None:
    """Send HL7 v2 messages over MLLP and print each acknowledgment.

    A message in enhanced mode whose MSH-15 asks for no accept ACK on success (NE, ER) is sent
    without waiting for one (v2.5 2.9.3); an error ACK that arrives later for it is printed then.
    Exit status 0 when every message was accepted (AA/CA) or asked for no answer, 1 otherwise,
    2 on usage errors.
    """
    from adapters.hl7v2 import HL7Error, parse
    from adapters.hl7v2.ack import ack_mode
    from adapters.hl7v2.mllp_client import MLLPClient

    host, port = _host_port(target)
    context = _tls_context(ca, cert, key) if tls or ca or cert or key else None
    failures = 0
    unanswered: dict[str, str] = {}  # control id -> where, of messages sent without waiting

    def report(where: str, ack: Message) -> None:
        nonlocal failures
        code = ack.get("MSA-1")
        detail = ack.get("ERR-8") or ack.get("MSA-3") or ack.get("ERR-3.2")
        at = ack.get("ERR-2") or ack.get("ERR-1")
        line = f"{where}: {ack.get('MSA-2') or '-'} {code}"
        if code not in _ACCEPTED:
            failures += 1
            line += f" {at} {detail}".rstrip()
        click.echo(line)
        if verbose:
            click.echo(ack.encode().replace("\r", "\n"))

    with MLLPClient(host, port, timeout=timeout, retries=retries, tls=context) as client:
        for item in iter_inputs(paths):
            if item.payload is None:
                click.echo(f"{item.where}: not sent: {item.too_large}", err=True)
                failures += 1
                continue
            try:
                message = parse(item.payload)
                control, mode = message.get("MSH-10"), ack_mode(message)
                answered, asked = mode.answered_when_accepted, mode.accept
            except HL7Error:
                control, answered, asked = "", True, ""  # the receiver answers what it cannot parse (AR)
            try:
                ack_bytes = client.send(item.payload, answered=answered)
                if ack_bytes is None:
                    unanswered[control] = item.where
                    click.echo(f"{item.where}: {control or '-'} sent; MSH-15 {asked} asks for no acknowledgment when accepted")
                    continue
                while True:
                    try:
                        ack = parse(ack_bytes or b"")
                    except HL7Error as exc:
                        click.echo(f"{item.where}: unreadable acknowledgment: {exc}", err=True)
                        failures += 1
                        break
                    late = ack.get("MSA-2") in unanswered and ack.get("MSA-2") != control
                    report(f"{unanswered.pop(ack.get('MSA-2'))} (late)" if late else item.where, ack)
                    if not late:  # a late CE/CR of a message sent without waiting: this one's ACK is next
                        break
                    ack_bytes = client.receive()
            except (ConnectionError, OSError) as exc:
                click.echo(f"{item.where}: {exc}", err=True)
                sys.exit(1)
    sys.exit(1 if failures else 0)
