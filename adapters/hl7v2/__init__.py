"""HL7 v2 inbound edge: framing (MLLP, batches), charset decoding, ER7 parsing, ACKs."""
from adapters.hl7v2.er7 import parse
from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.message import Message, Segment

__all__ = ["HL7Error", "Message", "Segment", "parse"]
