"""Running the gateway under gunicorn, the production WSGI server (DESIGN.md: `pulsebridge serve`).

Two functions: `build_app(options)` makes the Flask app a worker serves; `run(options)` runs the
HTTP server. Other listeners (MLLP, a watched folder) and start-up work (demo data) plug in through
`ServeOptions.before_start` and `ServeOptions.services` without touching the HTTP side.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from flask import Flask

    from gateway.audit_sink import AuditSink

DEFAULT_HTTP = "127.0.0.1:8080"

# A service starts in the gunicorn master once it is ready, and returns the function that stops it.
Service = Callable[["ServeOptions"], Callable[[], None]]


@dataclass
class ServeOptions:
    """What `pulsebridge serve` was asked for."""

    http: str = DEFAULT_HTTP
    db: str = "sqlite:///pulsebridge.db"
    workers: int | None = None  # default: PULSEBRIDGE_WORKERS, else one per core
    threads: int | None = None  # default: PULSEBRIDGE_THREADS, else 4 per worker
    settings: dict[str, Any] = field(default_factory=dict)  # extra create_app config
    before_start: list[Callable[["ServeOptions"], None]] = field(default_factory=list)  # e.g. --demo loads samples
    services: list[Service] = field(default_factory=list)  # e.g. --mllp, --watch listeners


class UnsafeBind(ValueError):
    """A listener reachable from other hosts with no authentication configured (DESIGN.md: secure by default)."""


def security_notice(listeners: dict[str, str], *, authentication: str | None, insecure: bool) -> list[str]:
    """Start-up lines saying how callers are authenticated; UnsafeBind for a non-loopback bind without authentication.

    `listeners` maps an option (--http, --mllp) to its HOST:PORT ('' when off); `authentication` describes the
    token check (None when no secret or JWKS is configured); `insecure` is the explicit --insecure."""
    from gateway.address import split_address
    from gateway.allow_list import is_loopback_bind

    exposed = {option: address for option, address in listeners.items() if address and not is_loopback_bind(split_address(address)[0])}
    if authentication is not None:
        lines = [f"authentication: on ({authentication}); every FHIR, /hl7/v2 and /admin request needs a bearer token"]
        if exposed.get("--mllp"):
            lines.append(f"note: MLLP on {exposed['--mllp']} carries no token; admit senders with --mllp-allow and TLS")
        return lines
    if exposed and not insecure:
        names = ", ".join(f"{option} {address}" for option, address in exposed.items())
        raise UnsafeBind(
            f"{names} would be reachable from other hosts with no authentication: set --auth-secret / PULSEBRIDGE_AUTH_SECRET "
            "or --auth-jwks / PULSEBRIDGE_AUTH_JWKS, bind 127.0.0.1, or pass --insecure to accept the risk"
        )
    if exposed:
        return [f"WARNING: authentication is off and {', '.join(exposed.values())} is reachable from other hosts (--insecure)"]
    return ["authentication: off; listening on loopback only (set --auth-secret or --auth-jwks to serve other hosts)"]


def build_app(options: ServeOptions) -> Flask:
    """The app one worker serves, on its own repository connection (opened after fork)."""
    from gateway.app import create_app

    return create_app({**options.settings, "DB": options.db})


def worker_count(options: ServeOptions) -> tuple[int, int]:
    """(processes, threads per process): one process per core keeps the GIL out of the way; threads cover I/O waits."""
    cores = os.cpu_count() or 1
    workers = options.workers or int(os.environ.get("PULSEBRIDGE_WORKERS", 0)) or cores
    threads = options.threads or int(os.environ.get("PULSEBRIDGE_THREADS", 0)) or 4
    return workers, threads


def prepare_store(db: str) -> None:
    """Open the store once in the main process so schema migrations run before workers race for them."""
    from adapters.storage import open_repository

    open_repository(db).close()


def child_process_service(module: str, *args: str, stop_timeout: float = 35.0) -> Service:
    """A service run as `python -m MODULE ARGS... --db URL`, a child of the gunicorn master.

    A separate process keeps its threads out of the master, which forks workers. Stopping sends
    SIGTERM (the child finishes what is in flight) and SIGKILL after `stop_timeout` seconds."""

    def start(options: ServeOptions) -> Callable[[], None]:
        command = [sys.executable, "-m", module, *args, "--db", options.db]
        child = subprocess.Popen(command, preexec_fn=_die_with_parent)  # noqa: S603 - our own module

        def stop() -> None:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=stop_timeout)
                except subprocess.TimeoutExpired:
                    child.kill()

        return stop

    return start


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the master dies, even by SIGKILL (prctl PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


WORKER_SWITCH_INTERVAL = 0.001  # seconds a thread may keep the GIL while another waits (CPython: 5 ms)


def _short_gil_turns(_worker: Any) -> None:
    """In each worker, threads take turns at the GIL every millisecond: a request thread waiting behind
    another at each of its I/O boundaries would otherwise wait up to 5 ms every time."""
    sys.setswitchinterval(WORKER_SWITCH_INTERVAL)


def _audit_sink(options: ServeOptions) -> AuditSink | None:
    """Start the audit sink process when the trail is on, and hand its address to the workers' apps."""
    from gateway.audit_sink import AuditSink
    from gateway.settings import Settings

    if not Settings.from_env().overriding(options.settings).audit:
        return None
    sink = AuditSink(options.db)
    sink.start()
    options.settings = {**options.settings, "AUDIT_SINK": sink.address}
    return sink


def run(options: ServeOptions) -> None:
    """Serve until SIGTERM/SIGINT: gunicorn gthread workers (keep-alive), services in the master."""
    from gunicorn.app.base import BaseApplication

    prepare_store(options.db)
    for task in options.before_start:
        task(options)
    workers, threads = worker_count(options)
    stops: list[Callable[[], None]] = []
    sink = _audit_sink(options)

    def when_ready(_server: Any) -> None:
        stops.extend(service(options) for service in options.services)

    def on_exit(_server: Any) -> None:
        for stop in reversed(stops):
            stop()
        if sink is not None:
            sink.stop()  # after the workers: it stores what they sent, then ends

    settings = {
        "bind": [options.http],
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "keepalive": 5,
        "timeout": 60,
        "graceful_timeout": 10,
        "proc_name": "pulsebridge",
        "accesslog": None,  # request URLs can carry patient identifiers: no access log (DESIGN.md, PHI)
        "errorlog": "-",
        "logger_class": "gateway.log_hygiene.GunicornLogger",  # no exception text, query strings or headers in logs
        "loglevel": "warning",
        "preload_app": False,
        "when_ready": when_ready,
        "on_exit": on_exit,
        "post_worker_init": _short_gil_turns,
    }

    class Gateway(BaseApplication):
        def load_config(self) -> None:
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return build_app(options)

    Gateway().run()
