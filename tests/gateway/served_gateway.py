"""`python -m gateway serve` as a real process whose every output line (stdout and stderr) is kept, for e2e tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServedGateway:
    """The gateway with an HTTP and an MLLP port on SQLite; `output` collects what the process tree writes."""

    def __init__(self, tmp: Path, *extra: str, env: dict[str, str] | None = None, db: str | None = None) -> None:
        self.db = db or f"sqlite:///{tmp / 'served.db'}"
        self.http, self.mllp = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.http}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--http", f"127.0.0.1:{self.http}",
             "--mllp", f"127.0.0.1:{self.mllp}", "--db", self.db, "--workers", "1", *extra],
            start_new_session=True, env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        )
        self.lines: list[str] = []
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        for port in (self.mllp, self.http):
            self._wait_for(port)

    def _drain(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def _wait_for(self, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "server exited: " + self.output
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"nothing listens on {port}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> str:
        """SIGTERM the process group, wait, and return everything it wrote."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        self._drainer.join(timeout=10)
        return self.output
