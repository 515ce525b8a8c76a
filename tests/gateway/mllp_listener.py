"""An in-process MLLP listener (gateway.mllp_server.MLLPServer) on its own event loop thread, for listener tests."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gateway.ingest import Ingestor
from gateway.mllp_server import MLLPServer


@contextmanager
def running_listener(ingestor: Ingestor, host: str = "127.0.0.1", **options: Any) -> Iterator[MLLPServer]:
    """Start an MLLPServer on a free port in a thread; stop it (gracefully) on exit."""
    server = MLLPServer(ingestor, host, 0, threads=2, **options)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10), "the listener did not start"
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(grace=5), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
