"""A blocking MLLP sender (HL7 v2.5.1 Appendix C.4): one frame out, one ACK back, resend after a reconnect."""
from __future__ import annotations

import socket
import ssl
import time

from adapters.hl7v2.mllp import read_frame, send_frame


def client_tls_context(ca: str | None = None, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ client context (RFC 9325) verifying the receiver against `ca` (else the system store), optionally with a client certificate."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        context.load_cert_chain(cert, key)
    return context


class MLLPClient:
    """Sends messages in order on one connection; a lost connection is reopened and the unacknowledged
    message resent, as the original acknowledgment rules expect of a sender (v2.5 2.9.2)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.tls = tls
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
            self._sock = sock
        return self._sock

    def send(self, payload: bytes, *, answered: bool = True) -> bytes | None:
        """Send one message and return its ACK payload (ConnectionError once every retry has failed);
        `answered=False` (enhanced mode, MSH-15 NE or ER) returns None once the frame is written."""
        last_error: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * attempt)
            try:
                sock = self._connect()
                send_frame(sock, payload)
                if not answered:
                    return None
                ack = read_frame(sock)
                if ack is not None:
                    return ack
                last_error = ConnectionError("the receiver closed the connection before acknowledging")
            except ssl.SSLCertVerificationError as exc:  # the receiver is not who it claims: resending cannot help
                self.close()
                raise ConnectionError(f"{self.host}:{self.port}: TLS certificate not trusted: {exc.verify_message}") from None
            except OSError as exc:  # refused, reset, timed out: reconnect and resend
                last_error = exc
            self.close()
        raise ConnectionError(f"no acknowledgment from {self.host}:{self.port}: {last_error}")

    def receive(self) -> bytes | None:
        """The next frame the receiver sends on this connection (a late accept ACK after MSH-15 ER), or
        None when the connection closes; OSError on timeout."""
        return read_frame(self._connect())

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self) -> MLLPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
