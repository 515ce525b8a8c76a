"""The audit trail: one AuditEvent per FHIR, admin and HL7 v2 request or message (FHIR R4 auditevent.html, IHE BALP).

`install(app)` adds an after_request hook that captures the facts of each request (the caller, the
route, the status, the document sent) and hands them to the app's writer:
- under `pulsebridge serve`, a `SocketWriter` (gateway.audit_sink) builds the event in the request
  thread and sends it to the sink process, which stores the events of every worker, so no worker
  thread competes with the request threads for the GIL;
- elsewhere, `BackgroundWriter` (the default) builds and stores events in a thread of the process,
  from a bounded queue, in one storage transaction about every second, flushed at process exit;
- a test app (`TESTING`) writes inline, so the test client sees its event at once.
`AUDIT_WRITER` = `background` | `inline` overrides. A full queue or socket makes requests wait rather
than lose events. A failed audit write never fails the request: it is logged, without PHI.

AuditEvents are stored as ordinary resources, so `GET /fhir/AuditEvent?...` searches them; they are
written through the repository, never through HTTP, so reading the trail records one event per read
and never recurses. HL7 v2 messages are audited by the Ingestor itself (`record_message`), in the
transaction that applies them, whichever transport brought them; `POST /hl7/v2` is therefore not
audited a second time here.
"""
from __future__ import annotations

import atexit
from abc import ABC, abstractmethod
import logging
import queue
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from typing import Any

import orjson
from flask import Flask, Response, request

from adapters.storage import search_parameters as indexed
from adapters.storage.base import BundleEntryRequest, Repository
from conformance.audit import (
    MessageFacts, Requester, Sender, admin_event, ingest_event, is_reference, observer_device, rest_event,
)
from gateway.fhir.context import STORE_KEY
from gateway.fhir.representation import sent_document
from gateway.security.principal import ANONYMOUS_LOCAL, current_principal, remote_address
from gateway.settings import SETTINGS_KEY

log = logging.getLogger(__name__)

AUDIT_KEY = "pulsebridge.audit"
AUDITED_BLUEPRINTS = frozenset({"fhir", "admin"})  # hl7v2: the Ingestor audits each message
_FHIR_PREFIX = "/fhir"


@dataclass(frozen=True)
class Capture:
    """What the request thread hands over: facts only, interpreted later by `build_event`."""

    blueprint: str
    endpoint: str
    method: str
    view_args: dict[str, Any]
    parameters: tuple[tuple[str, str], ...]
    status: int
    body: dict | bytes | None  # the FHIR document sent (gateway.fhir.representation), else JSON bytes
    recorded: datetime
    requester: Requester


# -- who ------------------------------------------------------------------------------------------


def current_requester() -> Requester:
    """The caller of this request as the audit trail names it: the Principal, else anonymous at the remote address."""
    principal = current_principal() or ANONYMOUS_LOCAL
    claims = principal.claims or {}
    issuer = claims.get("iss") if isinstance(claims.get("iss"), str) else None
    fhir_user = claims.get("fhirUser") if isinstance(claims.get("fhirUser"), str) else None
    if fhir_user and "/" in fhir_user:
        fhir_user = "/".join(fhir_user.rstrip("/").split("/")[-2:])  # SMART fhirUser may be an absolute URL
    return Requester(principal.subject, principal.client_id, principal.address or remote_address(), issuer, fhir_user)


# -- the hook -------------------------------------------------------------------------------------


def install(app: Flask) -> None:
    """Audit every FHIR and admin request of `app` (IHE BALP), unless the `audit` setting turns it off."""
    if not audit_enabled(app):
        return
    repository: Repository = app.extensions[STORE_KEY]
    sink = app.config.get("AUDIT_SINK")  # `pulsebridge serve`: the address of its audit sink process
    mode = app.config.get("AUDIT_WRITER") or ("inline" if app.testing else "sink" if sink else "background")
    audit_writer: AuditWriter
    if mode == "sink":
        from gateway.audit_sink import SocketWriter

        audit_writer = SocketWriter(repository, sink)
    elif mode == "background":
        audit_writer = BackgroundWriter(repository)
    else:
        audit_writer = InlineWriter(repository)
    app.extensions[AUDIT_KEY] = audit_writer
    if not isinstance(audit_writer, InlineWriter):
        atexit.register(audit_writer.flush)

    def after_request(response: Response) -> Response:
        try:
            capture = capture_request(response)
            if capture is not None:
                audit_writer.submit(capture)
        except Exception as error:  # noqa: BLE001 - the audit trail never fails a request
            log.error("audit capture failed: %s", type(error).__name__)
        return response

    app.after_request(after_request)


def audit_enabled(app: Flask) -> bool:
    """The `audit` setting (PULSEBRIDGE_AUDIT on/off; default on)."""
    return app.extensions[SETTINGS_KEY].audit


def capture_request(response: Response) -> Capture | None:
    """The facts of this request, or None when it is not audited (health, console, HL7 v2 ingest)."""
    blueprint = request.blueprint or ("fhir" if request.path.startswith(_FHIR_PREFIX + "/") else "")
    if blueprint not in AUDITED_BLUEPRINTS:
        return None
    body: dict | bytes | None = sent_document(response)
    if body is None and not response.is_streamed and not response.direct_passthrough and "json" in (response.mimetype or ""):
        body = response.get_data()
    parameters = tuple(request.args.items(multi=True))
    if request.method == "POST" and request.endpoint == "fhir.search_type_post":
        parameters += tuple(request.form.items(multi=True))
    return Capture(
        blueprint, request.endpoint or "", request.method, dict(request.view_args or {}), parameters,
        response.status_code, body, datetime.now(timezone.utc), current_requester(),
    )


# -- what -----------------------------------------------------------------------------------------


@cache
def _routes() -> dict[str, Any]:
    """Endpoint name -> Route of the FHIR route table (gateway/fhir/routes.py)."""
    from gateway.fhir.routes import ROUTES

    return {f"fhir.{route.endpoint}": route for route in ROUTES}


_METHOD_INTERACTION = {"GET": "read", "POST": "create", "PUT": "update", "DELETE": "delete", "PATCH": "patch"}


def build_event(capture: Capture) -> dict:
    """The AuditEvent of one captured request (BALP RESTful patterns; admin requests as DICOM Query/Import)."""
    body = _json(capture.body)
    issues = body.get("issue", ()) if body.get("resourceType") == "OperationOutcome" else ()
    if capture.blueprint == "admin":
        message_id = capture.view_args.get("message_id")
        action = "C" if capture.method == "POST" else ("R" if message_id is not None else "E")
        return admin_event(action=action, status=capture.status, recorded=capture.recorded, requester=capture.requester,
                           message_id=message_id, outcome_issues=issues)
    route = _routes().get(capture.endpoint)
    resource_type = capture.view_args.get("resource_type") or (route.operation.resource_type if route and route.operation else None)
    resource_id = capture.view_args.get("resource_id")
    if route is None:
        interaction = _METHOD_INTERACTION.get(capture.method, "read")
    elif route.operation is not None:
        interaction = "operation"
    elif not route.interactions:
        interaction = "capabilities"
    elif route.interactions == ("transaction", "batch"):
        interaction = "batch" if body.get("type") == "batch-response" else "transaction"
    else:
        interaction = route.interactions[0]
    resources: list[str] = []
    patients: list[str] = []
    if resource_type and resource_id and is_reference(f"{resource_type}/{resource_id}"):
        resources.append(f"{resource_type}/{resource_id}")
    searched = interaction.startswith("search")
    if searched and resource_type:
        resources += _searched_references(resource_type, capture.parameters)
    if 200 <= capture.status < 300:
        _collect(body, resources, patients)
    patients += [ref for ref in resources if ref.startswith("Patient/")]
    return rest_event(
        interaction=interaction, status=capture.status, recorded=capture.recorded, requester=capture.requester,
        resource_type=resource_type, resources=resources, patients=patients,
        parameter_names=[name for name, _ in capture.parameters if _known_parameter(resource_type, name)] if searched else None,
        outcome_issues=issues, operation=route.operation.name if route and route.operation else None,
    )


def _json(body: dict | bytes | None) -> dict:
    if isinstance(body, dict):
        return body
    if not body:
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _known_parameter(resource_type: str | None, name: str) -> bool:
    """Only names this server defines are recorded: an unknown one could be anything the caller typed."""
    from gateway.fhir.capability import search_parameter_names

    base = name.split(":", 1)[0].split(".", 1)[0]
    return resource_type is not None and base in search_parameter_names(resource_type)


def _searched_references(resource_type: str, parameters: Iterable[tuple[str, str]]) -> list[str]:
    """`_id` values and plain reference-parameter values (patient=Patient/x, subject=123) as references; no other values."""
    found = []
    for name, value in parameters:
        base, _, modifier = name.partition(":")
        if "." in base:
            continue  # a chain: its value belongs to another resource's element
        spec = indexed.parameter(resource_type, base)
        if base == "_id":
            found += [f"{resource_type}/{item.strip()}" for item in value.split(",")]
        elif spec is not None and spec.type == "reference" and modifier in ("", *spec.targets):
            for item in value.split(","):
                item = item.strip()
                target = modifier or (spec.targets[0] if len(spec.targets) == 1 else "")
                found.append(item if "/" in item else f"{target}/{item}")
    return [ref for ref in found if is_reference(ref)]


def _collect(body: dict, resources: list[str], patients: list[str]) -> None:
    """References of what a 2xx body carries: the resource, or each Bundle entry (its resource or response.location)."""
    if body.get("resourceType") == "Bundle":
        for entry in body.get("entry") or ():
            resource = entry.get("resource")
            if isinstance(resource, dict) and resource.get("resourceType") not in (None, "OperationOutcome"):
                _note(resource, resources, patients)
            elif isinstance(entry.get("response"), dict):
                location = entry["response"].get("location") or ""
                ref = "/".join(location.split("/_history")[0].split("/")[-2:])
                if is_reference(ref):
                    resources.append(ref)
    elif body.get("resourceType") not in (None, "OperationOutcome", "CapabilityStatement"):
        _note(body, resources, patients)


def _note(resource: dict, resources: list[str], patients: list[str]) -> None:
    resource_type, resource_id = resource.get("resourceType"), resource.get("id")
    if isinstance(resource_type, str) and isinstance(resource_id, str):
        resources.append(f"{resource_type}/{resource_id}")
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str) and ref["reference"].startswith("Patient/"):
            patients.append(ref["reference"])


# -- storing --------------------------------------------------------------------------------------

_observed: weakref.WeakSet = weakref.WeakSet()
_observed_lock = threading.Lock()


def _ensure_observer(repository: Repository) -> None:
    """Store this gateway's Device once per process, so `source=Device/pulsebridge` resolves (an unchanged update is no new version).

    Its own transaction, never inside another: should two processes race to create it, the loser only logs.
    """
    with _observed_lock:
        if repository in _observed:
            return
    try:
        repository.update(observer_device())
    except Exception as error:  # noqa: BLE001 - search by source= needs only the reference, not the Device
        log.warning("audit observer Device not stored (%s)", type(error).__name__)
        return
    with _observed_lock:
        _observed.add(repository)


def store_events(repository: Repository, events: list[dict]) -> None:
    """All events in one storage transaction; should that fail, each on its own, logging (no PHI) what is lost."""
    _ensure_observer(repository)
    try:
        repository.transaction([BundleEntryRequest("POST", "AuditEvent", event) for event in events])
        return
    except Exception as error:  # noqa: BLE001
        log.error("audit batch of %d events failed (%s); retrying one by one", len(events), type(error).__name__)
    for event in events:
        try:
            repository.create(event)
        except Exception as error:  # noqa: BLE001
            log.error("audit event lost: %s %s (%s)", event.get("subtype", [{}])[0].get("code", ""), event.get("recorded"),
                      type(error).__name__)


class AuditWriter(ABC):
    """Turns captures into stored AuditEvents."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    @abstractmethod
    def submit(self, capture: Capture) -> None:
        """Accept one request's facts for the trail."""

    def flush(self) -> None:
        """Wait until everything submitted is stored."""

    def _write(self, captures: list[Capture]) -> None:
        events = [event for event in map(event_of, captures) if event is not None]
        if events:
            store_events(self.repository, events)


def event_of(capture: Capture) -> dict | None:
    """`build_event`, or None when it fails, logged without PHI: the trail never fails a request."""
    try:
        return build_event(capture)
    except Exception as error:  # noqa: BLE001
        log.error("audit event for %s %s could not be built (%s)", capture.method, capture.endpoint, type(error).__name__)
        return None


class InlineWriter(AuditWriter):
    """Stores each event in the request thread, before the response leaves."""

    def submit(self, capture: Capture) -> None:
        self._write([capture])


class BackgroundWriter(AuditWriter):
    """A bounded queue drained by one thread into a transaction per `interval`; the thread ends when idle."""

    def __init__(self, repository: Repository, *, interval: float = 1.0, capacity: int = 10_000, batch: int = 5_000,
                 idle_rounds: int = 10) -> None:
        super().__init__(repository)
        self.interval, self.batch, self.idle_rounds = interval, batch, idle_rounds
        self.queue: queue.Queue[Capture] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, capture: Capture) -> None:
        self.queue.put(capture)  # blocks when full: back-pressure rather than a lost event
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pulsebridge-audit", daemon=True)
                self._thread.start()

    def flush(self) -> None:
        self.queue.join()

    def _run(self) -> None:
        idle = 0
        last = 0.0
        while True:
            try:
                first = self.queue.get(timeout=self.interval)
            except queue.Empty:
                idle += 1
                if idle >= self.idle_rounds:
                    with self._lock:
                        if self.queue.empty():
                            self._thread = None
                            return
                continue
            idle = 0
            wait = last + self.interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # let a batch gather: one transaction per interval
            captures = [first]
            while len(captures) < self.batch:
                try:
                    captures.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(captures)
            finally:
                last = time.monotonic()
                for _ in captures:
                    self.queue.task_done()


def writer(app: Flask) -> AuditWriter | None:
    """The app's audit writer, None when auditing is off."""
    return app.extensions.get(AUDIT_KEY)


# -- HL7 v2 messages ------------------------------------------------------------------------------


def record_ingest(
    repository: Repository, receipt: Any, ack_code: str, *, error: Any = None, resources: Iterable[str] = (), note: str | None = None,
) -> None:
    """Store the AuditEvent of one ingested message (an ingest Receipt): sender, ids, codes and written references, never its text.

    Called inside the unit that applies the message, the event commits or rolls back with it. Over
    `POST /hl7/v2` the HTTP caller is recorded too.
    """
    from flask import has_request_context

    application, facility, control_id = receipt.header
    message = receipt.message
    location = getattr(error, "location", None)
    facts = MessageFacts(
        receipt.message_id, control_id, message.message_type if message is not None else "", receipt.transport, ack_code,
        getattr(error, "code", None), str(location) if location is not None and location.segment else None,
    )
    references = [ref for ref in resources if is_reference(ref)]
    event = ingest_event(
        message=facts, sender=Sender(application, facility, receipt.peer or None), recorded=datetime.now(timezone.utc),
        requester=current_requester() if has_request_context() else None, resources=references,
        patients=[ref for ref in references if ref.startswith("Patient/")], note=note,
    )
    repository.create(event)
