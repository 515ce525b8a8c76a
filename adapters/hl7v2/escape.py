"""HL7 v2 escape sequences (v2.5 2.7.4-2.7.6): decoded on access, encoded on write."""
from __future__ import annotations

from adapters.hl7v2.delimiters import Delimiters


def unescape(text: str, delimiters: Delimiters) -> str:
    """Decode \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\P\\, \\Xhh..\\ and \\.br\\; drop other formatting escapes, keep the text."""
    esc = delimiters.escape
    if not esc or esc not in text:
        return text
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch != esc:
            j = text.find(esc, i)
            if j < 0:
                out.append(text[i:])
                break
            out.append(text[i:j])
            i = j
            continue
        end = text.find(esc, i + 1)
        if end < 0:  # a lone escape character is taken literally
            out.append(text[i:])
            break
        out.append(_decode_sequence(text[i + 1 : end], delimiters))
        i = end + 1
    return "".join(out)


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
        return _decode_hex(body[1:])
    # \H\ \N\ (highlight), \.sp\ \.in\ \.ti\ \.sk\ \.ce\ \.fi\ \.nf\ (FT formatting), \Cxxyy\ \Mxxyyzz\
    # (charset switches) and \Zdd\ (locally defined) carry no text of their own.
    return ""


def _decode_hex(hex_digits: str) -> str:
    if len(hex_digits) % 2 or not hex_digits:
        return ""
    try:
        raw = bytes.fromhex(hex_digits)
    except ValueError:
        return ""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


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
    if d.truncation:
        table[d.truncation] = f"{esc}P{esc}"
    if not any(ch in text for ch in table):
        return text
    return "".join(table.get(ch, ch) for ch in text)
