"""HL7 v2 escape sequences (v2.5 2.7.4-2.7.6): decoded on access, encoded on write."""
from __future__ import annotations

from adapters.hl7v2.delimiters import Delimiters


def unescape(text: str, delimiters: Delimiters) -> str:
    """Decode \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\P\\, \\Xhh..\\ and \\.br\\; drop other formatting escapes, keep the text."""
    esc = delimiters.escape
    if not esc or esc not in text:
        return text
    # Escape characters pair up left to right: parts[1], parts[3] ... are escape sequence bodies.
    parts = text.split(esc)
    count = len(parts)
    table = _simple(delimiters)
    if count == 3:  # one escape sequence: the usual case
        body = parts[1]
        return parts[0] + (table[body] if body in table else _decode_sequence(body, delimiters)) + parts[2]
    if count % 2 == 0:  # a last, unclosed escape character is taken literally
        unclosed = parts.pop()
        parts[-1] += esc + unclosed
        count -= 1
    for i in range(1, count, 2):
        body = parts[i]
        parts[i] = table[body] if body in table else _decode_sequence(body, delimiters)
    return "".join(parts)


_TABLES: dict[int, tuple[Delimiters, dict[str, str]]] = {}


def _simple(d: Delimiters) -> dict[str, str]:
    """The one-letter escapes and \\.br\\ for a delimiter set (cached by identity: hashing a dataclass is slow)."""
    entry = _TABLES.get(id(d))
    if entry is not None and entry[0] is d:
        return entry[1]
    table = {"F": d.field, "S": d.component, "T": d.subcomponent, "R": d.repetition, "E": d.escape, ".br": "\n"}
    if d.truncation:
        table["P"] = d.truncation
    if len(_TABLES) >= 256:  # messages with their own delimiters each bring a new object
        _TABLES.clear()
    _TABLES[id(d)] = (d, table)  # holding `d` keeps its id from being reused
    return table


def _decode_sequence(body: str, d: Delimiters) -> str:
    if body == "F":
        return d.field
    if body == "S":
        return d.component
    if body == "T":
        return d.subcomponent
    if body == "R":
        return d.repetition
    if body == "E":
        return d.escape
    if body == "P" and d.truncation:
        return d.truncation
    if body == ".br":
        return "\n"
    if body and body[0] == "X":
        return _decode_hex(body[1:], d.hex_codec)
    # \H\ \N\ (highlight), \.sp\ \.in\ \.ti\ \.sk\ \.ce\ \.fi\ \.nf\ (FT formatting), \Cxxyy\ \Mxxyyzz\
    # (charset switches) and \Zdd\ (locally defined) carry no text of their own.
    return ""


def _decode_hex(hex_digits: str, codec: str) -> str:
    """\\Xhh..\\ bytes as text in the message's character set (v2.5 2.7.5); without one, UTF-8, else Latin-1."""
    if len(hex_digits) % 2 or not hex_digits:
        return ""
    try:
        raw = bytes.fromhex(hex_digits)
    except ValueError:
        return ""
    try:
        return raw.decode(codec or "utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # every byte string is Latin-1: nothing sent is dropped


def escape(text: str, delimiters: Delimiters) -> str:
    """Encode delimiters in `text` so it can stand in a field (escape character first); newlines as \\.br\\."""
    d = delimiters
    esc = d.escape or "\\"
    table = {
        esc: f"{esc}E{esc}",
        d.field: f"{esc}F{esc}",
        d.component: f"{esc}S{esc}",
        d.subcomponent: f"{esc}T{esc}",
        d.repetition: f"{esc}R{esc}",
        "\r": f"{esc}X0D{esc}",
        "\n": f"{esc}.br{esc}",
    }
    if "." in (esc, d.field, d.component, d.subcomponent, d.repetition, d.truncation):
        # \.br\ cannot survive a "." delimiter or escape character: use the hex form
        table["\n"] = f"{esc}X0A{esc}"
    if d.truncation:
        table[d.truncation] = f"{esc}P{esc}"
    if not any(ch in text for ch in table):
        return text
    return "".join(table.get(ch, ch) for ch in text)
