"""No PHI in logs (DESIGN.md, "Secure by default"; HIPAA 45 CFR 164.312(b) audit controls keep PHI in the audit trail only).

The rule is kept at the call sites: log records carry message ids, control ids, peers and outcomes,
never names, identifiers or values. This module is the safety net for what call sites cannot
control: exception text (a parse error may quote a field), request URLs (a search query string
names the patient) and lines other libraries write (gunicorn's request errors). Every process
of `pulsebridge serve` logs through it: exception types and stack frames are kept, exception
messages are withheld, and query strings are cut from request lines.
"""
from __future__ import annotations

import logging
import re
import sys
import traceback
from types import TracebackType
from typing import Any

from gunicorn.glogging import Logger

WITHHELD = "[text withheld: may quote patient data]"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_QUERY = re.compile(r"\?[^\s'\"]*")  # a URL's query string, up to the next space or quote


def redact_query_strings(text: str) -> str:
    """`GET /fhir/Patient?name=Wang HTTP/1.1` -> `GET /fhir/Patient?[...] HTTP/1.1` (RFC 3986 3.4: the query names the patient)."""
    return _QUERY.sub("?[...]", text)


def _exception_chain(error: BaseException) -> list[BaseException]:
    """The exception and its causes/contexts, oldest first, as Python prints them."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return chain[::-1]


def format_exception_without_text(error: BaseException) -> str:
    """A traceback with every frame and exception type, but no exception message."""
    parts: list[str] = []
    for index, item in enumerate(_exception_chain(error)):
        if index:
            parts.append("\nThe above exception led to the following one:\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(item.__traceback__))
        parts.append(f"{type(item).__module__}.{type(item).__qualname__}: {WITHHELD}\n")
    return "".join(parts).rstrip("\n")


class PhiSafeFormatter(logging.Formatter):
    """Formats records as usual, except that exception messages are withheld and query strings cut."""

    def formatException(self, ei: tuple[type[BaseException], BaseException, TracebackType | None] | Any) -> str:  # noqa: N802 - logging API
        return format_exception_without_text(ei[1]) if ei and ei[1] is not None else ""

    def format(self, record: logging.LogRecord) -> str:
        # logging caches the rendered traceback on the record: never reuse one another formatter made.
        cached, record.exc_text = record.exc_text, None
        try:
            return redact_query_strings(super().format(record))
        finally:
            record.exc_text = cached


def configure_logging(level: int = logging.WARNING) -> None:
    """Root logging of a gateway process: stderr, `level`, through PhiSafeFormatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PhiSafeFormatter(LOG_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


class GunicornLogger(Logger):
    """gunicorn's logger (`logger_class`) with PhiSafeFormatter on its error log and access lines
    without query strings, referrer queries, headers or environment (they carry names and tokens)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(PhiSafeFormatter(self.error_fmt, self.datefmt))
        configure_logging()  # the app's own loggers, in the master and (inherited) in the workers

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        atoms.update(r=redact_query_strings(atoms["r"]), q="", f=redact_query_strings(str(atoms["f"])))
        return {key: value for key, value in atoms.items() if not key.endswith(("}e", "}i"))}
