"""HL7 v2 test messages for the ingest tests, built per case (control id, event time, name)."""
from __future__ import annotations


def adt(control_id: str, *, event: str = "20260101120000+0800", family: str = "DOE", birth: str = "19800101",
        mrn: str = "123", header_extra: str = "") -> bytes:
    """An ADT^A08 (update patient information, v2.5 3.3.8) about patient `mrn`."""
    return (
        f"MSH|^~\\&|HIS|H1|PB|HOSP|{event}||ADT^A08^ADT_A01|{control_id}|P|2.5{header_extra}\r"
        f"EVN|A08|{event}\r"
        f"PID|1||{mrn}^^^HOSP^MR||{family}^JANE||{birth}|F\r"
        "PV1|1|I|W1^101^1\r"
    ).encode()


UNMAPPABLE_BIRTH_DATE = "20231399"  # month 13: parses as ER7, fails the DTM datatype (0357 code 102) -> AE
GARBAGE = b"this is not HL7"
