"""Characters no FHIR request may carry: control characters (R4 datatypes.html#string: "Strings SHALL NOT contain
Unicode character points below 32, except for u0009 (horizontal tab), u0010 (carriage return) and u0013 (line feed)").

A NUL in a search value, an id or a resource can never match or be stored (PostgreSQL text cannot
hold U+0000), so such a request is refused with 400 at the edge instead of failing in the store.
"""
from __future__ import annotations

import re

from flask import request

from gateway.fhir.outcome import BadRequest, InvalidResource

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
# In JSON text a control character can only appear escaped: \u0000-\u001f (minus \t \n \r), not after
# an escaped backslash (`\\u0000` is the six characters "\u0000", which are fine).
_ESCAPED = re.compile(rb"(?<!\\)(?:\\\\)*\\u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F])")
_FORM = "application/x-www-form-urlencoded"


def _describe(text: str) -> str:
    found = _FORBIDDEN.search(text)
    return f"U+{ord(found.group()):04X}" if found else ""


def refuse_control_characters() -> None:
    """Flask before_request: 400 when the path, a query parameter or a search form field holds a control character."""
    if _FORBIDDEN.search(request.path):
        raise BadRequest(f"The URL path contains the control character {_describe(request.path)}")
    fields = list(request.args.items(multi=True))
    if request.method == "POST" and request.mimetype == _FORM:
        fields += request.form.items(multi=True)
    for name, value in fields:
        if _FORBIDDEN.search(name) or _FORBIDDEN.search(value):
            shown = name if not _FORBIDDEN.search(name) else repr(name)
            raise BadRequest(
                f"parameter {shown}: contains the control character {_describe(name + value)}, which no FHIR string can hold",
                expression=[_FORBIDDEN.sub("", name)],
            )


def check_json_strings(data: bytes, body: object) -> None:
    """422 when a JSON body's strings (keys or values) hold a control character (datatypes.html#string)."""
    if b"\\u00" not in data or not _ESCAPED.search(data):  # the substring test is a fast memchr-style pre-check
        return
    stack: list[object] = [body]
    while stack:
        item = stack.pop()
        texts = [*item.keys(), *item.values()] if isinstance(item, dict) else item if isinstance(item, list) else [item]
        for text in texts:
            if isinstance(text, str):
                if _FORBIDDEN.search(text):
                    raise InvalidResource(f"A string in the body contains the control character {_describe(text)}, which no FHIR string can hold")
            elif isinstance(text, (dict, list)):
                stack.append(text)
