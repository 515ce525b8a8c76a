"""The HL7 v2 edge's one error hierarchy; each error knows its table 0357 code and its ACK code."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where an error is, as ERR-2 (ERL) gives it: segment id, segment sequence, field, repetition, component."""

    segment: str = ""
    sequence: int | None = None  # 1-based occurrence of the segment in the message
    field: int | None = None
    repetition: int | None = None
    component: int | None = None
    subcomponent: int | None = None

    def __str__(self) -> str:
        text = self.segment
        if self.sequence and self.sequence > 1:
            text += f"[{self.sequence}]"
        if self.field is not None:
            text += f"-{self.field}"
            if self.repetition and self.repetition > 1:
                text += f"({self.repetition})"
            if self.component is not None:
                text += f".{self.component}"
                if self.subcomponent is not None:
                    text += f".{self.subcomponent}"
        return text


class HL7Error(Exception):
    """Base error: `code` is the HL7 table 0357 message error condition code.

    `rejects` decides the acknowledgment: True -> AR/CR (the message cannot be taken at all),
    False -> AE/CE (it was understood but could not be applied). See HL7 v2.5 2.9.2 / 2.14.
    """

    code = "207"  # application internal error
    rejects = True

    def __init__(self, message: str, *, location: Location | None = None, offset: int | None = None) -> None:
        self.reason = message
        self.location = location
        self.offset = offset
        where = []
        if location is not None and location.segment:
            where.append(str(location))
        if offset is not None:
            where.append(f"byte {offset}")
        super().__init__(f"{message} (at {', '.join(where)})" if where else message)

    @property
    def severity(self) -> str:
        """ERR-4 severity (table 0516)."""
        return "E"


class ParseError(HL7Error):
    """Malformed ER7: the bytes are not an HL7 v2 message (table 0357: 100 segment sequence error)."""

    code = "100"


class EncodingError(HL7Error):
    """Bytes that the declared (MSH-18) or detected character set cannot decode (0357: 102 data type error)."""

    code = "102"


class RequiredFieldMissing(HL7Error):
    """A field the message needs is empty (0357: 101)."""

    code = "101"


class DataTypeError(HL7Error):
    """A value that does not fit its datatype, e.g. an impossible date (0357: 102)."""

    code = "102"
    rejects = False


class UnsupportedMessageType(HL7Error):
    """MSH-9 names a message type this gateway does not take (0357: 200)."""

    code = "200"


class UnsupportedEvent(HL7Error):
    """MSH-9.2 names a trigger event this gateway does not take (0357: 201)."""

    code = "201"


class UnsupportedProcessingId(HL7Error):
    """MSH-11 processing id not accepted (0357: 202)."""

    code = "202"


class UnsupportedVersion(HL7Error):
    """MSH-12 version not accepted (0357: 203)."""

    code = "203"


class MessageTooLarge(HL7Error):
    """Input above the configured size limits; refused before it can exhaust memory (0357: 207)."""

    code = "207"


class ApplicationError(HL7Error):
    """The message parsed but could not be applied (0357: 207); answered AE/CE, kept as a dead letter."""

    code = "207"
    rejects = False
