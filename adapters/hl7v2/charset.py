"""Character sets: MSH-18 (table 0211) to a codec, and the no-MSH-18 rule for Chinese HIS (v2.5 2.15.9.18)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from adapters.hl7v2.errors import EncodingError, Location

BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_BOM_LEADS = frozenset(bom[:1] for bom, _ in BOMS)
DEFAULT_FALLBACK = "gb18030"


@dataclass(frozen=True, slots=True)
class CharsetDecision:
    """Which codec decoded the message and why; recorded on the message for `inspect` and audits."""

    codec: str
    declared: str  # MSH-18 as sent ('' when empty)
    reason: str


@lru_cache(maxsize=256)
def _decision(codec: str, declared: str, reason: str) -> CharsetDecision:
    """Decisions are immutable and few: share them instead of building one per message."""
    return CharsetDecision(codec, declared, reason)


@lru_cache(maxsize=1)
def _table() -> dict[str, str | None]:
    data = json.loads(resources.files("adapters.hl7v2").joinpath("data/charsets.json").read_text("utf-8"))
    table = {k.upper(): v for k, v in data["table_0211"].items()}
    table.update({k.upper(): v for k, v in data["aliases"].items()})
    return table


@lru_cache(maxsize=256)
def codec_for(msh18: str) -> str:
    """The Python codec for an MSH-18 value; EncodingError for a value with no codec."""
    key = " ".join(msh18.strip().upper().split())
    table = _table()
    if key not in table:
        raise EncodingError(f"unknown character set {msh18!r} in MSH-18", location=Location("MSH", 1, 18))
    codec = table[key]
    if codec is None:
        raise EncodingError(f"character set {msh18!r} (MSH-18) is not supported", location=Location("MSH", 1, 18))
    return codec


def declared_charset(data: bytes) -> str:
    """MSH-18 (first repetition) read straight from the bytes; every table 0211 set keeps MSH ASCII."""
    start = data.find(b"MSH")
    if start < 0 or len(data) < start + 8:
        return ""
    sep = data[start + 3 : start + 4]
    end = data.find(b"\r", start)
    if end < 0:
        end = len(data)
    lf = data.find(b"\n", start, end)  # bounded: never scans past the MSH segment
    if lf >= 0:
        end = lf
    fields = data[start:end].split(sep, 18)
    # fields[1] is MSH-2, so MSH-n is fields[n - 1]
    if len(fields) < 18:
        return ""
    rep = fields[1][1:2] or b"~"
    return fields[17].split(rep, 1)[0].decode("ascii", "replace").strip()


def decode(data: bytes, *, fallback: str = DEFAULT_FALLBACK) -> tuple[str, CharsetDecision]:
    """Bytes to text: BOM, else MSH-18, else strict UTF-8, else `fallback` (GBK bytes with an empty MSH-18)."""
    for bom, codec in BOMS if data[:1] in _BOM_LEADS else ():
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise EncodingError(f"invalid {codec} after byte-order mark: {exc.reason}", offset=exc.start + len(bom)) from None
            return text, _decision(codec, declared_charset(text.encode("utf-8")), f"byte-order mark ({codec})")
    declared = declared_charset(data)
    if declared:
        codec = codec_for(declared)
        try:
            return data.decode(codec), _decision(codec, declared, "MSH-18")
        except UnicodeDecodeError as exc:
            raise EncodingError(
                f"bytes are not valid {declared} as MSH-18 declares: {exc.reason}",
                location=Location("MSH", 1, 18),
                offset=exc.start,
            ) from None
    try:
        return data.decode("utf-8"), _decision("utf-8", "", "no MSH-18: valid UTF-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode(fallback), _decision(fallback, "", f"no MSH-18: not UTF-8, fallback {fallback}")
    except UnicodeDecodeError as exc:
        raise EncodingError(
            f"no MSH-18, and the bytes are neither UTF-8 nor {fallback}: {exc.reason}", offset=exc.start
        ) from None
