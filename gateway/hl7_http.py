"""`POST /hl7/v2`: one ER7 message in, its ACK out (DESIGN.md external contract).

200 for AA/CA (and a recognised resend of an accepted message), 400 for AR/CR, 422 for AE/CE.
With `Accept: application/fhir+json` an accepted message answers with the transaction-response
Bundle (R4 bundle.html#transaction-response) instead of the ACK; a failure with an OperationOutcome.
A body over PULSEBRIDGE_MAX_BODY_BYTES is refused with 413 and an OperationOutcome before it is read.
"""
from __future__ import annotations

import threading

from flask import Blueprint, Flask, Response, current_app, request

from gateway.fhir import bundles
from gateway.fhir.context import STORE_KEY
from gateway.fhir.outcome import outcome
from gateway.fhir.representation import body_bytes, fhir_response
from gateway.ingest import ACCEPTED, STATUS_DUPLICATE, STATUS_REJECTED, Ingestor, IngestResult
from gateway.settings import SETTINGS_KEY

INGESTOR_KEY = "pulsebridge.ingestor"
HL7_V2_MEDIA_TYPE = "application/hl7-v2"
_STATUS = {"A": 200, "R": 400, "E": 422}  # by the second letter of MSA-1 (table 0008)
_lock = threading.Lock()


def ingestor(app: Flask | None = None) -> Ingestor:
    """The app's Ingestor on the app's store and settings, made on first use (the message log migrates then)."""
    app = app or current_app
    found = app.extensions.get(INGESTOR_KEY)
    if found is None:
        with _lock:
            found = app.extensions.get(INGESTOR_KEY)
            if found is None:
                found = app.extensions[INGESTOR_KEY] = Ingestor(app.extensions[STORE_KEY], app.extensions[SETTINGS_KEY])
    return found


def http_status(result: IngestResult) -> int:
    """The HTTP status of an ingest outcome, from its acknowledgment code."""
    if result.status == STATUS_REJECTED:
        return 400
    return _STATUS.get(result.ack_code[1:2], 422)


def receive() -> Response:
    """Ingest the request body as one HL7 v2 message."""
    peer = f"{request.remote_addr or ''}"
    result = ingestor().ingest(body_bytes(request), peer=peer, transport="http")
    status = http_status(result)
    if "application/fhir+json" in request.headers.get("Accept", ""):
        if result.status == ACCEPTED:
            entries = [bundles.write_entry_response(outcome_, representation=False) for _, outcome_ in result.writes]
            return fhir_response({"resourceType": "Bundle", "type": "transaction-response", "entry": entries}, status)
        severity, code = ("information", "informational") if result.status == STATUS_DUPLICATE else ("error", "processing")
        text = f"message {result.control_id!r}: {result.status}" + (f": {result.error}" if result.error else "")
        return fhir_response(outcome(text, severity=severity, code=code), status)
    return Response(result.ack, status=status, content_type=HL7_V2_MEDIA_TYPE)


def blueprint() -> Blueprint:
    bp = Blueprint("hl7v2", __name__)
    bp.add_url_rule("/hl7/v2", "receive", receive, methods=["POST"])
    return bp
