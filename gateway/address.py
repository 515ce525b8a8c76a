"""Listener and peer addresses written HOST:PORT (an IPv6 host in brackets: [::1]:2575)."""
from __future__ import annotations


def split_address(value: str) -> tuple[str, int]:
    """`127.0.0.1:2575` -> ('127.0.0.1', 2575); ValueError naming the value when it is not HOST:PORT."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)
