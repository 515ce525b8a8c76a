"""General acknowledgments (HL7 v2.5 2.9 original and enhanced mode; MSH 2.15.9, MSA 2.15.8, ERR 2.15.5).

The ACK answers in the incoming message's own delimiters and character set, swaps sender and
receiver, and echoes MSH-10 in MSA-2. Which code (AA/AE/AR or CA/CE/CR) follows from the
HL7Error given: `rejects` -> R, otherwise E; its table 0357 `code` goes to ERR.
"""
from __future__ import annotations

import codecs
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources

from adapters.hl7v2.charset import BOMS, DEFAULT_FALLBACK, codec_for, declared_charset
from adapters.hl7v2.delimiters import DEFAULT, Delimiters
from adapters.hl7v2.er7 import read_delimiters
from adapters.hl7v2.errors import HL7Error, Location
from adapters.hl7v2.escape import escape
from adapters.hl7v2.message import Message

_BOM_FOR = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE,
            "utf-32-le": codecs.BOM_UTF32_LE, "utf-32-be": codecs.BOM_UTF32_BE}
_HEAD_BYTES = 64 * 1024  # how far ack_for_unparseable looks for an MSH segment
_V2_5 = (2, 5)


@lru_cache(maxsize=1)
def _tables() -> dict[str, dict[str, str]]:
    return json.loads(resources.files("adapters.hl7v2").joinpath("data/ack_tables.json").read_text("utf-8"))


def error_text(code: str) -> str:
    """The table 0357 display text for an error condition code."""
    return _tables()["table_0357"].get(code, "")


@dataclass(frozen=True)
class AckMode:
    """Acknowledgment mode the sender asked for (v2.5 2.9.2-2.9.3, table 0155 in MSH-15/MSH-16).

    Original mode (MSH-15 and MSH-16 both empty): one ACK, AA/AE/AR, after processing.
    Enhanced mode: an accept (commit) ACK CA/CE/CR as MSH-15 asks, and an application ACK
    AA/AE/AR as MSH-16 asks. An empty field in enhanced mode is taken as AL (always): asking
    for nothing is said with NE, and a sender waiting on MLLP is never left without an answer.
    """

    enhanced: bool
    accept: str = ""  # MSH-15, table 0155 (AL, NE, ER, SU)
    application: str = ""  # MSH-16

    def accept_ack_wanted(self, success: bool = True) -> bool:
        """Whether to send the enhanced-mode accept ACK (never in original mode)."""
        return self.enhanced and _wanted(self.accept, success)

    def application_ack_wanted(self, success: bool = True) -> bool:
        """Whether to send an application ACK (always in original mode)."""
        return not self.enhanced or _wanted(self.application, success)

    @property
    def answered_when_accepted(self) -> bool:
        """Whether an accepted message gets an answer on its own MLLP connection: the ACK in original
        mode, the accept ACK in enhanced mode when MSH-15 asks for it on success (AL, SU); after NE or
        ER a sender waiting for one would wait for ever."""
        return not self.enhanced or self.accept_ack_wanted(success=True)


def _wanted(condition: str, success: bool) -> bool:
    if condition == "NE":
        return False
    if condition == "ER":
        return not success
    if condition == "SU":
        return success
    return True  # AL, empty, or a value outside table 0155


def _mode(accept: str, application: str) -> AckMode:
    accept, application = accept.strip().upper(), application.strip().upper()
    if not accept and not application:
        return AckMode(False)
    return AckMode(True, accept or "AL", application or "AL")


def ack_mode(message: Message) -> AckMode:
    """The mode MSH-15/MSH-16 ask for."""
    return _mode(message.accept_ack_type, message.application_ack_type)


def ack_code(mode: AckMode, *, error: HL7Error | None = None, accepted: bool = True, application: bool = False) -> str:
    """MSA-1 (table 0008): C* for the enhanced-mode accept ACK, A* otherwise; R rejects, E errors."""
    prefix = "C" if mode.enhanced and not application else "A"
    if error is not None:
        return prefix + ("R" if error.rejects else "E")
    return prefix + ("A" if accepted else "R")


def build_ack(
    message: Message,
    *,
    error: HL7Error | None = None,
    accepted: bool = True,
    text: str = "",
    now: datetime | None = None,
    application: bool = False,
) -> str:
    """The ACK for `message` as ER7 text (CR-terminated segments).

    In enhanced mode this is the accept ACK (CA/CE/CR) unless `application` is set. A refusal
    without an error (`accepted=False`) is answered AR/CR with table 0357 code 207.
    """
    if error is None and not accepted:
        error = HL7Error(text or "message not accepted")
    code = ack_code(ack_mode(message), error=error, accepted=accepted, application=application)
    return _render(message.msh.fields, message.delimiters, code, error, text, now)


def ack_bytes(
    message: Message,
    *,
    error: HL7Error | None = None,
    accepted: bool = True,
    text: str = "",
    now: datetime | None = None,
    application: bool = False,
) -> bytes:
    """`build_ack` encoded in the incoming message's character set (MSH-18 is echoed)."""
    ack = build_ack(message, error=error, accepted=accepted, text=text, now=now, application=application)
    codec = message.charset.codec
    if not codec:  # parsed from text: follow MSH-18 if it names a known set
        declared = message.msh.get(18)
        try:
            codec = codec_for(declared) if declared else "utf-8"
        except HL7Error:
            codec = "utf-8"
    return _encode(ack, codec, bom=message.charset.reason.startswith("byte-order mark"))


def ack_for_unparseable(data: bytes, error: HL7Error, *, now: datetime | None = None, fallback_charset: str = DEFAULT_FALLBACK) -> bytes:
    """An AR/CR (or AE/CE) for bytes that did not parse, echoing whatever MSH can still be read.

    MSH is looked for in the first 64 KiB; its MSH-10 goes to MSA-2 and sender/receiver are
    swapped as usual. Without a readable MSH-2 the ACK uses the default delimiters and escapes
    the echoed values; without any MSH, MSA-2 is empty. NUL characters are dropped from what is echoed.
    """
    head = data[:_HEAD_BYTES]
    line, codec, bom, charset_used = _msh_line(head, fallback_charset)
    if line is not None:
        line = line.replace("\x00", "")  # ER7 has no NUL: echoed, it would make the ACK itself unparseable
    fields: list[str] = ["MSH", DEFAULT.field, DEFAULT.encoding_characters]
    delimiters = DEFAULT
    if line is not None:
        try:
            delimiters = read_delimiters(line)
            fields = line.split(delimiters.field)
            fields.insert(1, delimiters.field)
        except HL7Error:
            sep = line[3:4]
            if sep and not sep.isalnum() and not sep.isspace():
                # MSH-2 unreadable: keep the fields, but as plain text in the default delimiters
                fields = [escape(value, DEFAULT) for value in line.split(sep)]
                fields[0:2] = ["MSH", DEFAULT.field, DEFAULT.encoding_characters]
    if not charset_used and len(fields) > 18:
        fields[18] = ""  # we did not decode by it: do not claim it
    mode = _mode(_first_component(_field(fields, 15), delimiters), _first_component(_field(fields, 16), delimiters))
    code = ack_code(mode, error=error)
    ack = _render(fields, delimiters, code, error, "", now)
    return _encode(ack, codec, bom=bom)


def _msh_line(head: bytes, fallback: str) -> tuple[str | None, str, bool, bool]:
    """(MSH segment text or None, codec for the answer, BOM wanted, MSH-18 honoured)."""
    for bom, codec in BOMS:
        if head.startswith(bom):
            text = head[len(bom) :].decode(codec, "replace")
            start = text.find("MSH")
            if start < 0:
                return None, codec, codec != "utf-8", False
            line = re.split(r"[\r\n]", text[start:], maxsplit=1)[0]
            return line, codec, codec != "utf-8", False
    start = head.find(b"MSH")
    if start < 0:
        return None, "utf-8", False, False
    end = len(head)
    for term in (b"\r", b"\n"):
        pos = head.find(term, start)
        if 0 <= pos < end:
            end = pos
    raw = head[start:end]
    declared = declared_charset(raw)
    if declared:
        try:
            codec = codec_for(declared)
            return raw.decode(codec, "replace"), codec, False, True
        except (HL7Error, LookupError):
            pass
    try:
        return raw.decode("utf-8"), "utf-8", False, False
    except UnicodeDecodeError:
        return raw.decode(fallback, "replace"), fallback, False, False


def _encode(ack: str, codec: str, *, bom: bool) -> bytes:
    # Characters the incoming set cannot carry (e.g. CJK error text in an 8859/1 message) become '?'.
    body = ack.encode(codec, "replace")
    return _BOM_FOR.get(codec, b"") + body if bom else body


def _field(fields: list[str], n: int) -> str:
    return fields[n] if n < len(fields) else ""


def _first_rep(raw: str, d: Delimiters) -> str:
    return raw.split(d.repetition, 1)[0]


def _first_component(raw: str, d: Delimiters) -> str:
    return _first_rep(raw, d).split(d.component, 1)[0]


def _version(raw: str, d: Delimiters) -> tuple[int, ...]:
    """MSH-12.1 as numbers ('2.3.1' -> (2, 3, 1)); unreadable or empty counts as 2.5."""
    numbers = re.findall(r"\d+", _first_component(raw, d))
    return tuple(int(n) for n in numbers) if numbers else _V2_5


def _timestamp(now: datetime | None) -> str:
    """MSH-7 (DTM with offset, v2.5 2A.3.22)."""
    moment = now or datetime.now()
    if moment.tzinfo is None:  # a naive time is local time
        moment = moment.astimezone()
    return moment.strftime("%Y%m%d%H%M%S%z")


def _control_id() -> str:
    """A fresh MSH-10: 20 characters, the v2.5 maximum length of ST MSH-10."""
    return uuid.uuid4().hex[:20].upper()


def _render(fields: list[str], d: Delimiters, code: str, error: HL7Error | None, text: str, now: datetime | None) -> str:
    """ACK segments from the incoming MSH fields (as sent, in delimiters `d`)."""
    version = _version(_field(fields, 12), d)
    event = _first_rep(_field(fields, 9), d).split(d.component)
    message_type = ["ACK", event[1] if len(event) > 1 else ""]
    if version >= (2, 3, 1):  # MSH-9.3 message structure exists from v2.3.1
        message_type.append("ACK")
    header = [
        _field(fields, 5), _field(fields, 6),  # MSH-3/4 <- incoming receiver
        _field(fields, 3), _field(fields, 4),  # MSH-5/6 <- incoming sender
        _timestamp(now), "",
        d.component.join(message_type).rstrip(d.component),
        _control_id(),
        _field(fields, 11), _field(fields, 12),
        "", "", "", "", "",
        _field(fields, 18),
    ]
    while header and not header[-1]:
        header.pop()
    segments = ["MSH" + d.field + d.encoding_characters + d.field + d.field.join(header)]
    control_id = _first_rep(_field(fields, 10), d)
    if version < _V2_5:
        msa_text = text or (error.reason if error is not None else "")
        msa = ["MSA", code, control_id, escape(msa_text, d)]
        segments.append(_join(msa, d))
        if error is not None:
            segments.append(_join(["ERR", _eld(error, d)], d))
    else:
        segments.append(_join(["MSA", code, control_id], d))
        if error is not None or text:
            segments.append(_join(_err(error, text, d), d))
    return "".join(s + "\r" for s in segments)


def _join(values: list[str], d: Delimiters) -> str:
    while len(values) > 1 and not values[-1]:
        values.pop()
    return d.field.join(values)


def _numbers(*values: int | None) -> list[str]:
    return ["" if v is None else str(v) for v in values]


def _erl(location: Location | None, d: Delimiters) -> str:
    """ERR-2 (ERL): segment^sequence^field^repetition^component^subcomponent."""
    if location is None or not location.segment:
        return ""
    loc = location
    field_given = loc.field is not None
    parts = [escape(loc.segment, d)] + _numbers(
        loc.sequence or 1,
        loc.field,
        (loc.repetition or 1) if field_given else None,
        loc.component if field_given else None,
        loc.subcomponent if field_given and loc.component is not None else None,
    )
    return d.component.join(parts).rstrip(d.component)


def _err(error: HL7Error | None, text: str, d: Delimiters) -> list[str]:
    """ERR for v2.5+: ERR-2 location, ERR-3 code (CWE, HL70357), ERR-4 severity, ERR-7 diagnostic, ERR-8 user message."""
    if error is None:  # a note on an accepted message
        return ["ERR", "", "", d.component.join(["0", escape(error_text("0"), d), "HL70357"]), "I", "", "", "", escape(text, d)]
    cwe = d.component.join([error.code, escape(error_text(error.code), d), "HL70357"])
    return ["ERR", "", _erl(error.location, d), cwe, error.severity, "", "", escape(str(error), d), escape(text, d)]


def _eld(error: HL7Error, d: Delimiters) -> str:
    """ERR-1 (ELD, before v2.5): segment^sequence^field^code&text&HL70357."""
    loc = error.location
    code = d.subcomponent.join([error.code, escape(error_text(error.code), d), "HL70357"])
    if loc is None or not loc.segment:
        return d.component.join(["", "", "", code])
    return d.component.join([escape(loc.segment, d), *_numbers(loc.sequence or 1, loc.field), code])
