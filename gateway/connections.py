"""The cap on open client connections of one process (`server.max_connections`).

Past the cap a new connection is answered with a 503 and closed at once, before its request
is read: reading it would hold the very resources the cap protects.  The answer is JSON,
since the path is not known yet.  Open connections, and the streams on them, never notice.

Refusals are counted (`aigw_connections_refused_total`) and logged at most once per
`log_every_s`, with the number refused since the last line: a flood of connections must
not become a flood of log lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from providers.errors import TooManyConnections

log = logging.getLogger("gateway")

_REFUSAL = TooManyConnections(
    "The gateway is at its connection limit; retry in a moment, with back-off."
)
_BODY = orjson.dumps({"error": _REFUSAL.message, "code": _REFUSAL.code})
OVER_CAPACITY = (
    b"HTTP/1.1 %d Service Unavailable\r\n"
    b"Content-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: %d\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
    b"\r\n" % (_REFUSAL.client_status, len(_BODY))
) + _BODY


class ConnectionCap:
    """Counts the open connections; `admit` says whether one more may stay open.

    Each admitted connection is released exactly once, when it closes (the listener's
    protocol owns that); a refused one is never counted as open.
    """

    def __init__(
        self,
        limit: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        log_every_s: float = 10.0,
    ) -> None:
        self.limit = limit
        self.open = 0
        self.refused = 0
        self._clock = clock
        self._log_every_s = log_every_s
        self._unlogged = 0
        self._next_log_at = float("-inf")

    def admit(self) -> bool:
        if self.open < self.limit:
            self.open += 1
            return True
        self.refused += 1
        self._unlogged += 1
        now = self._clock()
        if now >= self._next_log_at:
            log.warning(
                "at the connection limit (server.max_connections: %d): refused %d new "
                "connection(s) since the last such line",
                self.limit,
                self._unlogged,
            )
            self._unlogged = 0
            self._next_log_at = now + self._log_every_s
        return False

    def release(self) -> None:
        self.open -= 1

    def register(self, registry: CollectorRegistry) -> None:
        """Expose the counts with the process's other metrics."""
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "aigw_connections_refused",
            "Client connections closed at once: the process was at server.max_connections.",
            value=self.refused,
        )
        yield GaugeMetricFamily(
            "aigw_open_connections", "Open client connections of this process.", value=self.open
        )
