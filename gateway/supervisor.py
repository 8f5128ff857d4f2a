"""The parent of several workers (`server.workers` > 1): it starts them, owns the signals,
and replaces a worker that dies.

Each worker binds the port itself with `SO_REUSEPORT`, and the kernel spreads new
connections over the workers' sockets by a hash of their addresses.  With one socket
shared by every worker, the one that wakes first accepts every connection waiting
(asyncio accepts up to the backlog per wake-up), so a burst lands on one worker; with a
socket each, a busy worker never takes another's share.  The cost: Linux only, a fixed
port, and the connections queued on a worker that dies are reset.

Each worker is a fresh `ai-gateway serve` process (not a fork), so that it imports
prometheus_client with `PROMETHEUS_MULTIPROC_DIR` set and holds no state of the parent.

SIGTERM / SIGINT: every worker drains as a single process does; the parent exits once
all have (0, or 1 if one failed).  SIGHUP: every worker reloads the config file.  A
worker that exits otherwise is logged and started again (after a pause that grows while
new workers keep dying young); one that exits 2 (a config error) stops the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.multiprocess import mark_process_dead

from gateway.config import ConfigError, GatewayConfig
from gateway.metrics import MULTIPROC_DIR_ENV

log = logging.getLogger("gateway")

CONFIG_ERROR = 2  # the exit code of `serve` on a config it cannot use
_YOUNG_S = 5.0  # a worker that dies younger than this counts towards the back-off
_MAX_PAUSE_S = 30.0


@dataclass
class Supervisor:
    count: int
    base_args: list[str]  # `serve` with its config, host and port
    metrics_dir: str
    stopping: bool = False
    failed: bool = False
    workers: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop_signal, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self._forward, signal.SIGHUP)
        codes = await asyncio.gather(*(self._keep(index) for index in range(self.count)))
        if self.failed:
            return CONFIG_ERROR
        return 0 if all(code in (0, -signal.SIGTERM) for code in codes) else 1

    def stop(self) -> None:
        if not self.stopping:
            log.info("shutting down: every worker drains its open streams")
        self.stopping = True
        self._forward(signal.SIGTERM)

    def _forward(self, signum: int) -> None:
        for process in self.workers.values():
            if process.returncode is None:
                process.send_signal(signum)

    async def _keep(self, index: int) -> int:
        """Run worker `index` until the gateway stops, starting it again when it dies."""
        young_deaths = 0
        while True:
            started = time.monotonic()
            process = await self._start(index)
            code = await process.wait()
            mark_process_dead(process.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
            if self.stopping:
                return code
            if code == CONFIG_ERROR:
                log.error("worker %d cannot use the config: stopping the gateway", index)
                self.failed = True
                self.stop()
                return code
            young_deaths = young_deaths + 1 if time.monotonic() - started < _YOUNG_S else 0
            pause = min(0.5 * 2 ** (young_deaths - 2), _MAX_PAUSE_S) if young_deaths > 1 else 0
            log.error(
                "worker %d (pid %d) exited unexpectedly (%s); starting a new one in %.1f s",
                index,
                process.pid,
                _describe_exit(code),
                pause,
            )
            await asyncio.sleep(pause)
            if self.stopping:
                return 0

    async def _start(self, index: int) -> asyncio.subprocess.Process:
        args = [*self.base_args, "--workers", str(self.count), "--worker-index", str(index)]
        env = {**os.environ, MULTIPROC_DIR_ENV: self.metrics_dir}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", *args, env=env
        )
        self.workers[index] = process
        if self.stopping:  # the signal came while it was starting
            process.send_signal(signal.SIGTERM)
        log.info("worker %d started (pid %d)", index, process.pid)
        return process


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def check_can_supervise(port: int) -> None:
    """Several workers need the kernel to spread one port's connections: Linux does."""
    if not sys.platform.startswith("linux"):
        raise ConfigError("server.workers > 1 needs Linux (SO_REUSEPORT); run one worker here")
    if port == 0:
        raise ConfigError("server.workers > 1 needs a fixed server.port, not 0")


def supervise(config: GatewayConfig, config_path: str, host: str, port: int, count: int) -> int:
    """Serve `host:port` with `count` workers until SIGTERM; the process's exit code."""
    check_can_supervise(port)
    log.info("serving on http://%s:%d with %d workers (pid %d)", host, port, count, os.getpid())
    if not config.redis.url:
        log.warning(
            "rate limits: no redis.url, so each of the %d workers keeps its own in-process "
            "limits: a tenant may get up to %d times its limits; set redis.url to share them",
            count,
            count,
        )
    metrics_dir = tempfile.mkdtemp(prefix="aigw-metrics-")
    base_args = ["serve", "--config", str(Path(config_path)), "--host", host, "--port", str(port)]
    try:
        return asyncio.run(Supervisor(count, base_args, metrics_dir).run())
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
