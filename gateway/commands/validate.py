"""`pulsebridge validate PATH ...`: validate FHIR R4 JSON (a resource, a Bundle, or NDJSON) and print
OperationOutcomes (DESIGN.md, external contract). Exit status 1 if any resource has errors, 2 on usage errors."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import click


@dataclass(frozen=True, slots=True)
class _Document:
    """One JSON text to validate: where it came from, and the parsed value or the parse error."""

    source: str
    line: int
    value: Any = None
    error: str | None = None


@click.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--summary", is_flag=True, help="Print a readable line per resource instead of OperationOutcome JSON.")
@click.option("--strict-references", is_flag=True,
              help="Unresolved references in transaction/document/collection Bundles are errors, not warnings.")
@click.option("--no-models", is_flag=True, help="Skip the fhir.resources R4B model pass (faster; R4 checks only).")
def validate(paths: tuple[str, ...], summary: bool, strict_references: bool, no_models: bool) -> None:
    """Validate FHIR R4 JSON files (a resource, a Bundle, or NDJSON with one per line; - is stdin)."""
    import orjson

    from conformance.outcome import Issue, to_operation_outcome
    from conformance.validation import validate_resource

    failed = checked = 0
    for path in paths:
        for document in _documents(path):
            checked += 1
            if document.error is not None:
                issues = [Issue("fatal", "structure", "", document.error, "json")]
            else:
                issues = validate_resource(document.value, strict_references=strict_references, models=not no_models)
            errors = [issue for issue in issues if issue.is_error]
            failed += bool(errors)
            where = f"{document.source}:{document.line}"
            if summary:
                click.echo(_summary_line(where, document.value, issues))
            else:
                click.echo(orjson.dumps(to_operation_outcome(issues)).decode())
                if document.error is not None:
                    click.echo(document.error, err=True)
                elif errors:
                    first = errors[0]
                    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
                    location = f" {first.expression}:" if first.expression else ""
                    click.echo(f"{where}:{location} {first.diagnostics}{more}", err=True)
    if summary:
        click.echo(f"{checked} checked, {checked - failed} valid, {failed} with errors")
    if failed:
        sys.exit(1)


def _documents(path: str) -> Iterator[_Document]:
    """The JSON texts in `path`: the whole file, or one per non-blank line when it is NDJSON."""
    import orjson

    source = "<stdin>" if path == "-" else path
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    try:
        yield _Document(source, 1, orjson.loads(data))
        return
    except orjson.JSONDecodeError as whole_error:
        lines = data.splitlines()
        if not _is_ndjson(lines):
            yield _Document(source, 1, error=_json_error(source, 0, whole_error))
            return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield _Document(source, number, orjson.loads(line))
        except orjson.JSONDecodeError as error:
            yield _Document(source, number, error=_json_error(source, number - 1, error))


def _is_ndjson(lines: list[bytes]) -> bool:
    """NDJSON when there are several non-blank lines and the first is a JSON value of its own."""
    import orjson

    filled = [line for line in lines if line.strip()]
    if len(filled) < 2:
        return False
    try:
        orjson.loads(filled[0])
    except orjson.JSONDecodeError:
        return False
    return True


def _json_error(source: str, line_offset: int, error: Any) -> str:
    """file:line:col: message of a JSON syntax error, as editors and compilers print it."""
    return f"{source}:{error.lineno + line_offset}:{error.colno}: invalid JSON: {error.msg}"


def _summary_line(where: str, resource: Any, issues: list[Any]) -> str:
    label = ""
    if isinstance(resource, dict):
        label = f" {resource.get('resourceType')}" + (f"/{resource['id']}" if isinstance(resource.get("id"), str) else "")
    errors = [issue for issue in issues if issue.is_error]
    warnings = [issue for issue in issues if issue.severity == "warning"]
    if not errors:
        return f"{where}{label}: valid" + (f", {len(warnings)} warning(s)" if warnings else "")
    lines = [f"{where}{label}: {len(errors)} error(s), {len(warnings)} warning(s)"]
    lines += [f"  {issue.severity}: {issue.expression or '-'}: {issue.diagnostics}" for issue in issues[:20]]
    if len(issues) > 20:
        lines.append(f"  ... {len(issues) - 20} more")
    return "\n".join(lines)
