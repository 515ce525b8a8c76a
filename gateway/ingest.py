"""The ingest pipeline for one inbound HL7 v2 message: log -> parse -> map -> store -> acknowledge (DESIGN.md data flow).

Durability and idempotency (HL7 v2.5 2.9 acknowledgment rules; DESIGN.md "nothing lost, nothing doubled"):

1. The raw bytes are written to the message log in their own committed transaction before
   anything is applied or acknowledged. Parsing first is side-effect free, so a message that
   fails to parse is logged too (status `rejected`) and answered AR/CR.
2. In enhanced mode (MSH-15/MSH-16 present, v2.5 2.9.3) the accept ACK (CA) is due once step 1
   has committed; `accept()` returns it so a transport can send it before processing. Whether
   it is wanted follows MSH-15 (table 0155: AL always, NE never, ER on error, SU on success):
   `Receipt.mode.accept_ack_wanted(success)`. MLLP sends nothing when it is not wanted; HTTP
   always answers with it, as a request needs a response.
3. The Bundle's entries, the source clocks and the log row's `applied` mark are written in ONE
   database transaction (the log joins the repository's unit of work on SQLite and PostgreSQL),
   so either all of a message is stored and marked, or nothing is. Only then AA is sent
   (original mode). Should a crash fall between steps 1 and 3, the row stays `received` and
   `recover()` applies it at the next start; and were the mark ever lost, replay is still safe:
   every entry is a PUT with a deterministic id, and an update with unchanged content makes no
   new version (adapters.storage.engine), so nothing is doubled.
4. A resend (same MSH-3, MSH-4 and MSH-10 as a message already applied, and the same bytes:
   senders that reuse control ids for different messages exist, and their data must not be
   dropped) is logged as
   `duplicate` and answered with the original's code; nothing is applied twice. The check runs
   inside the applying transaction, under the write lock, so two copies racing on two
   connections cannot both apply.
5. A message that parses but cannot be mapped or stored is answered AE/CE with an ERR segment
   and kept as a dead letter (status `error`, with the reason); `replay()` retries it later.
   A message type or event the mapping does not support is answered AR (its HL7Error rejects).

Out-of-order protection (choice): `source_clock` keeps, per Patient and Encounter, the source
event time of the newest message applied to it: EVN-2 (recorded date/time) when present,
else MSH-7. An entry whose message is older than that clock is left out of the transaction
(the resource keeps its newer data); the message is still applied otherwise, answered AA and
its log row notes what was skipped. A message without a readable event time is always applied.
A message that does not own the visit (ORU, MDM ...: gateway/identity.py) only adds to an Encounter
and does not move its clock.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from adapters.hl7v2 import HL7Error, Message, parse
from adapters.hl7v2.ack import AckMode, ack_bytes, ack_for_unparseable, ack_mode
from adapters.hl7v2.errors import ApplicationError, DataTypeError
from adapters.storage.base import BundleEntryRequest, Repository, StorageError
from adapters.storage.dates import date_range
from adapters.storage.engine import put_targets, retrying, rewrite_references
from adapters.storage.messagelog import (
    APPLIED, DUPLICATE, ERROR, RECEIVED, REJECTED, LoggedMessage, open_message_log, utc_now,
)
from gateway.settings import Settings

log = logging.getLogger(__name__)

ACCEPTED, STATUS_ERROR, STATUS_REJECTED, STATUS_DUPLICATE = "accepted", "error", "rejected", "duplicate"
ORDERED_TYPES = ("Patient", "Encounter")
"""Resources protected against older events: an ADT about an earlier moment must not undo a later one."""


@dataclass(frozen=True)
class IngestResult:
    """What became of one message: the ACK to send and the outcome (accepted|error|rejected|duplicate)."""

    ack: bytes
    status: str
    control_id: str
    error: str | None = None
    message_id: int | None = None
    ack_code: str = ""
    notes: tuple[str, ...] = ()
    writes: tuple[tuple[BundleEntryRequest, Any], ...] = ()  # (request, storage result) pairs, for a transaction-response


@dataclass
class Receipt:
    """A message logged durably and parsed, waiting to be applied; `final` is set when there is nothing to apply."""

    message_id: int
    raw: bytes
    message: Message | None = None
    accept_ack: bytes | None = None  # enhanced mode: the CA (kept for HTTP even when MSH-15 wants none sent)
    mode: AckMode = AckMode(False)  # MSH-15/MSH-16 as asked; unreadable input counts as original mode
    final: IngestResult | None = None
    header: tuple[str, str, str] = ("", "", "")  # MSH-3, MSH-4, MSH-10 as sent
    notes: list[str] = field(default_factory=list)
    peer: str = ""  # who sent it, for the audit trail
    transport: str = ""


def _header(message: Message) -> tuple[str, str, str]:
    """(MSH-3, MSH-4, MSH-10) as sent: the sender's key for a message (v2.5 2.15.9.10)."""
    msh = message.msh
    return msh.raw(3), msh.raw(4), message.control_id


def digest(raw: bytes) -> str:
    """SHA-256 of the message with trailing segment terminators and blanks removed (a resend's identity)."""
    return hashlib.sha256(raw.rstrip(b"\r\n \t")).hexdigest()


def event_micros(message: Message, zone: tzinfo) -> int | None:
    """The source event time, EVN-2 else MSH-7 (v2.5 3.4.1.2, 2.15.9.7), as UTC microseconds; None if absent or unreadable.

    A time sent without an offset is read in `zone` (PULSEBRIDGE_TIMEZONE), as the mapping reads it."""
    from mappers.primitives import Timestamp

    for path in ("EVN-2", "MSH-7"):
        text = message.get(path) if message.segment(path[:3]) is not None else ""
        if not text:
            continue
        try:
            value = Timestamp(text).date_time(zone=zone)
        except DataTypeError:
            continue
        return date_range(value)[0]  # the first microsecond of what the value names
    return None


def bundle_requests(bundle: dict) -> list[BundleEntryRequest]:
    """Transaction Bundle entries (R4 bundle.html#transaction) as storage requests."""
    return [
        BundleEntryRequest(
            method=entry["request"]["method"], url=entry["request"]["url"], resource=entry.get("resource"),
            full_url=entry.get("fullUrl"), if_none_exist=entry["request"].get("ifNoneExist"),
            if_match=entry["request"].get("ifMatch"),
        )
        for entry in bundle.get("entry", [])
    ]


def _lock_in_order(unit: Any, requests: list[BundleEntryRequest]) -> None:
    """Lock every resource the message writes, in the store's one order (type, then row), before anything reads one.

    Identity resolution reads the message's Patient and Encounter first; read alone inside the unit,
    each would be locked before the rest of the Bundle and out of that order, and two messages of one
    patient on two connections deadlocked on PostgreSQL (~1 in 100 messages, each waiting 1 s for the
    deadlock check). The in-memory double has no `prefetch` and one lock."""
    prefetch = getattr(unit, "prefetch", None)
    if prefetch is not None:
        prefetch(put_targets(requests))


class Ingestor:
    """Receives raw messages from any transport (MLLP, HTTP, files) and applies them exactly once."""

    def __init__(self, repository: Repository, settings: Settings | None = None) -> None:
        self.repository = repository
        self.settings = settings or Settings()
        self.log = open_message_log(repository)

    # -- the pipeline -------------------------------------------------------------------------

    def ingest(self, raw: bytes, *, peer: str, transport: str) -> IngestResult:
        """Log, parse, apply and acknowledge one message."""
        receipt = self.accept(raw, peer=peer, transport=transport)
        return self.apply(receipt)

    def accept(self, raw: bytes, *, peer: str, transport: str) -> Receipt:
        """Parse and log durably; the receipt carries the enhanced-mode CA, or the final AR for unparseable input."""
        raw = bytes(raw)
        try:
            message = parse(raw, fallback_charset=self.settings.fallback_charset, limits=self.settings.limits())
        except HL7Error as error:
            return self._reject(raw, error, peer=peer, transport=transport)
        application, facility, control_id = _header(message)
        message_id = self.log.record(LoggedMessage(
            0, utc_now(), peer, transport, application, facility, control_id, message.message_type, digest(raw), raw, RECEIVED,
        ))
        mode = ack_mode(message)
        receipt = Receipt(message_id, raw, message, header=(application, facility, control_id), mode=mode, peer=peer, transport=transport)
        if mode.enhanced:
            receipt.accept_ack = ack_bytes(message)  # CA: the raw message is durable (v2.5 2.9.3.1)
        return receipt

    def reject_oversize(self, head: bytes, error: HL7Error, *, peer: str, transport: str) -> IngestResult:
        """AR for a frame refused for its size; its first bytes are logged as a rejected message."""
        receipt = self._reject(head, error, peer=peer, transport=transport)
        assert receipt.final is not None
        return receipt.final

    def _reject(self, raw: bytes, error: HL7Error, *, peer: str, transport: str) -> Receipt:
        ack = ack_for_unparseable(raw, error, fallback_charset=self.settings.fallback_charset)
        echoed = parse(ack)  # our own ACK echoes MSH-3/4 (as MSH-5/6) and MSH-10 (as MSA-2)
        application, facility, control_id = echoed.msh.raw(5), echoed.msh.raw(6), echoed.get("MSA-2")
        code = echoed.get("MSA-1")
        message_id = self.log.record(LoggedMessage(
            0, utc_now(), peer, transport, application, facility, control_id, "", digest(raw), raw, REJECTED, code, str(error),
        ))
        result = IngestResult(ack, STATUS_REJECTED, control_id, str(error), message_id, code)
        receipt = Receipt(message_id, raw, None, final=result, header=(application, facility, control_id), peer=peer, transport=transport)
        self._audit_after(receipt, code, error)
        return receipt

    def apply(self, receipt: Receipt) -> IngestResult:
        """Map and store a logged message in one transaction with its log mark; then the ACK."""
        if receipt.final is not None:
            return receipt.final
        message = receipt.message
        assert message is not None
        control_id = receipt.header[2]
        try:
            from mappers import convert_message

            bundle, report = convert_message(message, receipt.raw, zone=self.settings.timezone)
            mapped, named = bundle_requests(bundle), report.named
        except HL7Error as error:
            return self._fail(receipt, error)
        except Exception as error:  # noqa: BLE001 - any mapping failure is this message's dead letter
            log.exception("mapping failed for message %s", receipt.message_id)
            return self._fail(receipt, ApplicationError(f"mapping failed: {type(error).__name__}: {error}"))
        event = event_micros(message, self.settings.timezone)
        try:
            # a unit rolled back by a concurrent one (PostgreSQL deadlock) runs again, not an AE
            original, requests, results, notes = retrying(lambda: self._store(receipt, message, mapped, named, event))
        except HL7Error as error:
            return self._fail(receipt, error)
        except StorageError as error:
            return self._fail(receipt, ApplicationError(f"could not be stored: {error}"))
        except Exception as error:  # noqa: BLE001 - kept as a dead letter, never lost
            log.exception("storing message %s failed", receipt.message_id)
            return self._fail(receipt, ApplicationError(f"could not be stored: {type(error).__name__}"))
        if original is not None:
            return self._answer(receipt, original.ack_code, STATUS_DUPLICATE, original.reason or None)
        return IngestResult(
            receipt.accept_ack or ack_bytes(message, text="; ".join(notes)), ACCEPTED, control_id, None,
            receipt.message_id, "AA", tuple(notes), tuple(zip(requests, results)),
        )

    def _store(
        self, receipt: Receipt, message: Message, mapped: list[BundleEntryRequest], named: dict[str, str], event: int | None,
    ) -> tuple[LoggedMessage | None, list[BundleEntryRequest], list, list[str]]:
        """One unit: the resend check, the event-order guard, identity, the resources, the log mark and the
        audit event; (the original of a resend or None, the requests stored, their results, notes).
        `named`: the resources the message only names (mappers ConversionReport.named)."""
        application, facility, control_id = receipt.header
        with self.log.unit() as unit:
            self.log.lock_sender_key(unit, application, facility, control_id)
            key = (application, facility, control_id, digest(receipt.raw))
            original = self.log.find_applied(unit, key, other_than=receipt.message_id)
            if original is not None:
                self.log.finish(unit, receipt.message_id, DUPLICATE, original.ack_code,
                                f"resend of message {original.id}", duplicate_of=original.id)
                self._audit(receipt, original.ack_code, note=f"resend of message {original.id}")
                return original, [], [], []
            from gateway.identity import event_role, owns_visit, resolve as resolve_identity  # one person, one record

            _lock_in_order(unit, mapped)

            owners = {"Patient": event_role(message) == "snapshot", "Encounter": owns_visit(message)}
            requests, clocks, notes = self._order_guard(unit, mapped, event, owners=owners)
            requests, identity_notes = resolve_identity(
                requests, message, self.repository, self.settings.strong_identifiers, mapped=mapped, named=named
            )
            notes = [*notes, *identity_notes]
            results = self.repository.transaction(requests) if requests else []
            self.log.set_clocks(unit, clocks, receipt.message_id)
            self.log.finish(unit, receipt.message_id, APPLIED, "AA", "; ".join(notes))
            self._audit(receipt, "AA", resources=[r.url for r in requests if r.method == "PUT"])
            return None, requests, results, notes

    def _order_guard(
        self, unit: Any, requests: list[BundleEntryRequest], event: int | None, *, owners: dict[str, bool] | None = None
    ) -> tuple[list[BundleEntryRequest], dict[tuple[str, str], int], list[str]]:
        """Leave out Patient/Encounter updates older than what is stored; the new clocks to keep.

        Only a message that owns the record moves its clock (`owners`, by type; default all): a
        registration snapshot (gateway.identity.event_role) for a Patient, a visit event
        (gateway.identity.owns_visit) for an Encounter. Other messages only add to those records,
        so a delayed A03 or A08 older than an ORU still ends the stay or updates the demographics."""
        if event is None:
            return requests, {}, []
        keys: dict[tuple[str, str], BundleEntryRequest] = {}
        for request in requests:
            resource_type, _, resource_id = request.url.partition("/")
            if request.method == "PUT" and resource_type in ORDERED_TYPES and resource_id and "?" not in resource_id:
                keys[(resource_type, resource_id)] = request
        stored = self.log.clocks(unit, sorted(keys))
        stale = {key for key, micros in stored.items() if event < micros}
        clocks = {key: event for key in keys if key not in stale and (owners or {}).get(key[0], True)}
        if not stale:
            return requests, clocks, []
        mapping = {keys[k].full_url: f"{k[0]}/{k[1]}" for k in stale if keys[k].full_url}
        left_out = {id(keys[k]) for k in stale}
        kept = [r for r in requests if id(r) not in left_out]
        if mapping:
            kept = [BundleEntryRequest(r.method, r.url, rewrite_references(r.resource, mapping), r.full_url, r.if_none_exist, r.if_match)
                    for r in kept]
        notes = [f"{t}/{i} not updated: newer data is stored (out-of-order event)" for t, i in sorted(stale)]
        return kept, clocks, notes

    def _fail(self, receipt: Receipt, error: HL7Error) -> IngestResult:
        """AE (or AR for what is not supported) with ERR; the message stays as a dead letter with the reason."""
        message = receipt.message
        assert message is not None
        code = "AR" if error.rejects else "AE"
        status = REJECTED if error.rejects else ERROR
        with self.log.unit() as unit:
            self.log.finish(unit, receipt.message_id, status, code, str(error))
        self._audit_after(receipt, code, error)
        ack = receipt.accept_ack or ack_bytes(message, error=error, application=False)
        outcome = STATUS_REJECTED if error.rejects else STATUS_ERROR
        return IngestResult(ack, outcome, receipt.header[2], str(error), receipt.message_id, code)

    def _answer(self, receipt: Receipt, code: str, status: str, reason: str | None) -> IngestResult:
        """The ACK for a resend: the original's code again (v2.5 2.10.1, duplicate detection)."""
        message = receipt.message
        assert message is not None
        if receipt.accept_ack is not None:
            ack = receipt.accept_ack
        elif code == "AA":
            ack = ack_bytes(message)
        else:
            failure = ApplicationError(reason or "message was not applied")
            failure.rejects = code == "AR"  # type: ignore[misc]
            ack = ack_bytes(message, error=failure)
        return IngestResult(ack, status, receipt.header[2], reason if code != "AA" else None, receipt.message_id, code)

    def _audit(self, receipt: Receipt, ack_code: str, *, error: HL7Error | None = None,
               resources: list[str] | None = None, note: str | None = None) -> None:
        """The message's AuditEvent (DICOM 110107 Import), in the caller's open unit when there is one."""
        if self.settings.audit:
            from gateway.audit_trail import record_ingest

            record_ingest(self.repository, receipt, ack_code, error=error, resources=resources or (), note=note)

    def _audit_after(self, receipt: Receipt, ack_code: str, error: HL7Error) -> None:
        """The AuditEvent of a message that failed, in its own transaction; a failure to store it is logged, not raised."""
        try:
            self._audit(receipt, ack_code, error=error)
        except Exception as failure:  # noqa: BLE001 - the message's outcome is already logged durably
            log.error("audit event of message %s could not be stored (%s)", receipt.message_id, type(failure).__name__)

    # -- dead letters and recovery ------------------------------------------------------------

    def replay(self, message_id: int) -> IngestResult:
        """Apply a dead letter (or a message left `received`) again, on its own log row."""
        row = self.log.get(message_id)
        if row is None:
            raise KeyError(f"no message {message_id} in the log")
        if row.status not in (ERROR, REJECTED, RECEIVED):
            raise ValueError(f"message {message_id} is {row.status}, not a dead letter")
        try:
            message = parse(row.raw, fallback_charset=self.settings.fallback_charset, limits=self.settings.limits())
        except HL7Error as error:
            with self.log.unit() as unit:
                self.log.finish(unit, message_id, REJECTED, "AR", str(error))
            return IngestResult(ack_for_unparseable(row.raw, error), STATUS_REJECTED, row.control_id, str(error), message_id, "AR")
        receipt = Receipt(message_id, row.raw, message, header=(row.sending_application, row.sending_facility, row.control_id),
                          peer=row.peer, transport=row.transport)
        return self.apply(receipt)

    def recover(self) -> list[IngestResult]:
        """Apply messages logged but never applied (a crash between logging and storing)."""
        return [self.replay(row.id) for row in self.log.by_status((RECEIVED,), limit=100_000)]

    def dead_letters(self, *, limit: int = 100, offset: int = 0) -> list[LoggedMessage]:
        from adapters.storage.messagelog import DEAD_LETTER_STATUSES

        return self.log.by_status(DEAD_LETTER_STATUSES, limit=limit, offset=offset)
