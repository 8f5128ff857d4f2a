"""One worker of several (`server.workers`): who it is, how its logs and metrics say so.

The supervisor (`gateway.supervisor`) starts each worker as `ai-gateway serve` with its
index; a worker is otherwise the single-process gateway, with its own drain and reload.
Health and readiness name the worker that answered; every log line of a worker carries
its index and pid.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import Counter, Gauge

from gateway.connections import ConnectionCap
from gateway.state import Shared


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    count: int  # workers serving the port
    index: int  # this one's, 0 to count - 1; a replacement takes the index of the dead one

    @property
    def several(self) -> bool:
        return self.count > 1


_PR_SET_PDEATHSIG = 1  # prctl(2)

SINGLE = WorkerIdentity(count=1, index=0)
WORKER = web.AppKey("worker", WorkerIdentity)


def worker_of(app: web.Application) -> WorkerIdentity:
    """The app's worker; an app built outside `serve` (tests, embedding) is the only one."""
    return app.get(WORKER, SINGLE)


def resolve_count(setting: int | str) -> int:
    """`server.workers` as a number: `auto` is one per CPU core this process may use."""
    if setting != "auto":
        return int(setting)
    if sys.platform.startswith("linux"):
        return len(os.sched_getaffinity(0))  # a container's CPU set, not the host's
    return os.cpu_count() or 1


class WorkerTag(logging.Filter):
    """Adds the worker's index and pid to every log line (JSON fields; text via format)."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, "fields", {})
        record.fields = {**fields, "worker": self.index, "pid": record.process}
        record.worker = self.index
        return True


async def publish_live_values(shared: Shared, cap: ConnectionCap, every_s: float = 1.0) -> None:
    """Write this worker's live values to the shared metric files, every `every_s`.

    Open streams and connections are read from live objects when a single process is
    scraped; the multiprocess collector reads only files, so a worker writes them there,
    and a scrape sees them at most `every_s` old.
    """
    open_connections = Gauge(
        "aigw_open_connections",
        "Open client connections, all workers.",
        multiprocess_mode="livesum",
        registry=None,
    )
    refused = Counter(
        "aigw_connections_refused",
        "Client connections closed at once: a worker was at server.max_connections.",
        registry=None,
    )
    published = 0
    while True:
        shared.metrics.open_streams.set(len(shared.streams))
        open_connections.set(cap.open)
        refused.inc(cap.refused - published)
        published = cap.refused
        await asyncio.sleep(every_s)


def exit_with_parent() -> None:
    """Ask Linux to send this worker SIGTERM when its supervisor dies (say, SIGKILLed),
    so that no orphan holds the port: it drains and exits as on a normal stop."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
