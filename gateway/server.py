"""The `ai-gateway serve` process: listeners, signals, graceful drain and reload.

Connections: a request's headers must arrive within `server.header_timeout_s`, and at
most `server.max_connections` stay open (see `gateway.listener`).

SIGTERM / SIGINT: stop accepting connections, refuse new streams with 503, let open
streams finish for up to `server.drain_seconds`, end the rest with a `shutdown` error
event, then close everything.  SIGHUP: reload the config file (a bad file keeps the
running config).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from pathlib import Path

from aiohttp import web

from gateway.app import create_app, drain, reload
from gateway.config import ConfigError, GatewayConfig, ServerConfig
from gateway.connections import ConnectionCap
from gateway.exposure import open_relay_problem
from gateway.listener import GatewayRunner
from gateway.ops import metrics_response
from gateway.state import STATE
from gateway.workers import SINGLE, WORKER, WorkerIdentity, exit_with_parent, publish_live_values

log = logging.getLogger("gateway")


async def serve(
    config: GatewayConfig,
    config_path: str | Path,
    host: str,
    port: int,
    worker: WorkerIdentity = SINGLE,
) -> None:
    app = create_app(config)
    app[WORKER] = worker
    runner = main_runner(app, config.server)
    await runner.setup()
    state = app[STATE].current
    problem = open_relay_problem(host, config, state.chains.demo_mode)
    if problem is not None:
        await runner.cleanup()
        raise ConfigError(problem)
    publisher = _expose_process_metrics(app, runner, worker)
    metrics_runner: web.AppRunner | None = None
    stop = asyncio.Event()
    reloads: set[asyncio.Task[bool]] = set()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    def on_sighup() -> None:
        task = asyncio.create_task(reload(app, config_path))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    try:
        site = web.TCPSite(  # backlog: bursts of new streams
            runner, host, port, backlog=4096, reuse_port=worker.several or None
        )
        await site.start()
        if config.metrics.enabled and config.metrics.port:
            metrics_runner = await _serve_metrics(
                app, config.metrics.host, config.metrics.port, worker.several
            )
        _settle_heap()
        if worker.several:
            log.info("worker %d of %d serving", worker.index, worker.count)
        else:
            log.info("serving on http://%s:%d", host, port)
        await stop.wait()
        log.info("shutting down: draining open streams for up to %ss", config.server.drain_seconds)
        await site.stop()
        await drain(app, config.server.drain_seconds)
    finally:
        if publisher is not None:
            publisher.cancel()
        await runner.cleanup()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        log.info("stopped")


def main_runner(app: web.Application, server: ServerConfig) -> GatewayRunner:
    """The main port's runner: `server.header_timeout_s` becomes aiohttp's
    `keepalive_timeout` (see `gateway.listener` for why that bounds slow headers)."""
    return GatewayRunner(
        app,
        cap=ConnectionCap(server.max_connections),
        handler_cancellation=True,
        access_log=None,
        keepalive_timeout=server.header_timeout_s,
    )


def _expose_process_metrics(
    app: web.Application, runner: GatewayRunner, worker: WorkerIdentity
) -> asyncio.Task[None] | None:
    """The connection counts join the metrics: read live by a single process's registry,
    or, for a worker, written to the shared files by a task (returned, to be cancelled)."""
    shared = app[STATE].current.shared
    if not worker.several:
        runner.cap.register(shared.metrics.registry)
        return None
    exit_with_parent()
    return asyncio.create_task(publish_live_values(shared, runner.cap))


def _settle_heap() -> None:
    """Keep the garbage collector's full passes short once the process is serving.

    The objects made at start-up (modules, the SDKs, config, pydantic models) live for the
    whole process, yet a full collection walked all of them: a 160 ms pause of the event
    loop under load, which every open stream felt.  Frozen, they are left out of every
    pass, which then walks only the objects of the requests in flight.
    """
    gc.collect()
    gc.freeze()


async def _serve_metrics(
    app: web.Application, host: str, port: int, shared_port: bool
) -> web.AppRunner:
    """`/metrics` on its own port, without the admin key (keep that port private); with
    several workers each binds it (`shared_port`) and any one answers for all."""

    async def metrics(request: web.Request) -> web.Response:
        return metrics_response(app[STATE].current)

    metrics_app = web.Application()
    metrics_app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(metrics_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_port=shared_port or None).start()
    log.info("metrics on http://%s:%d/metrics", host, port)
    return runner
