"""The one piece of HTTP/1.1 the bench's raw servers need: where a request ends."""

from __future__ import annotations


class RequestReader:
    """Collects a connection's bytes and says when one more whole request has arrived."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> bool:
        """True when `data` completes a request (head and Content-Length body)."""
        self._buffer += data
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return False
        head = self._buffer[:head_end].lower()
        marker = head.find(b"content-length:")
        length = int(head[marker + 15 :].split(b"\r\n", 1)[0]) if marker >= 0 else 0
        end = head_end + 4 + length
        if len(self._buffer) < end:
            return False
        self._buffer = self._buffer[end:]
        return True
