"""Raw HTTP over a socket, for what treq will not send (framing tests)."""

from __future__ import annotations

import socket


def raw_exchange(port: int, data: bytes, timeout: float = 30.0) -> bytes:
    """Send ``data`` to 127.0.0.1:``port`` and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        try:
            connection.sendall(data)
        except OSError:
            pass  # the server may close while we are still sending
        chunks = []
        while True:
            try:
                chunk = connection.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)
