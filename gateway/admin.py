"""Admin endpoints for IT: dead letters, the messages that could not be applied (DESIGN.md "nothing lost").

GET /admin/deadletters lists them (no message bodies: they carry PHI), GET /admin/deadletters/<id>
shows one with its ER7 text, POST /admin/deadletters/<id>/replay applies it again after a fix.
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from gateway.hl7_http import ingestor


def list_dead_letters() -> Response:
    limit = min(int(request.args.get("_count", 100)), 1000)
    offset = int(request.args.get("_offset", 0))
    rows = ingestor().dead_letters(limit=limit, offset=offset)
    return jsonify({"deadLetters": [row.summary() for row in rows]})


def show_dead_letter(message_id: int) -> Response | tuple[Response, int]:
    row = ingestor().log.get(message_id)
    if row is None:
        return jsonify({"error": f"no message {message_id}"}), 404
    return jsonify({**row.summary(), "message": row.raw.decode("utf-8", "replace")})


def replay_dead_letter(message_id: int) -> Response | tuple[Response, int]:
    try:
        result = ingestor().replay(message_id)
    except KeyError as error:
        return jsonify({"error": str(error.args[0])}), 404
    except ValueError as error:
        return jsonify({"error": str(error)}), 409
    return jsonify({"id": message_id, "status": result.status, "ackCode": result.ack_code, "error": result.error})


def blueprint() -> Blueprint:
    bp = Blueprint("admin", __name__, url_prefix="/admin")
    bp.add_url_rule("/deadletters", "dead_letters", list_dead_letters, methods=["GET"])
    bp.add_url_rule("/deadletters/<int:message_id>", "dead_letter", show_dead_letter, methods=["GET"])
    bp.add_url_rule("/deadletters/<int:message_id>/replay", "replay", replay_dead_letter, methods=["POST"])
    return bp
