"""Prometheus metrics of one gateway process (its own registry, so apps never share one).

Labels are bounded: tenants and models come from config, routes and outcomes are fixed.
`aigw_overhead_seconds` is the request's time not spent waiting on the upstream:
parsing, auth, rate limiting, SSE encoding and writing, accounting.

With several workers (`server.workers`) the supervisor sets `PROMETHEUS_MULTIPROC_DIR`
for them: prometheus_client then keeps every value in files there, and `render` sums
all workers' files, so that any worker answers a scrape for the whole gateway.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from policies.base import CallStats
from providers.base import Usage

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
DURATION_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5)
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client at import


@dataclass(slots=True)
class RequestRecord:
    """Everything measured about one request, for metrics and the access log."""

    request_id: str
    route: str
    started: float = field(default_factory=time.perf_counter)
    tenant: str = "-"
    outcome: str = "rejected"  # ok | error | client_disconnected | rejected
    status: int = 0
    code: str | None = None
    model: str | None = None
    duration_s: float = 0.0
    ttft_s: float | None = None
    upstream_wait_s: float = 0.0
    usage: Usage | None = None
    cost_usd: float | None = None  # what `usage` cost, when its model has a price
    stats: CallStats | None = None
    rate_limit: str | None = None  # the limit that refused it
    content: dict[str, str] | None = None  # prompt and completion, for opted-in tenants


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.shared_dir = os.environ.get(MULTIPROC_DIR_ENV) or None  # set: one of N workers
        r = self.registry
        self.requests = Counter(
            "aigw_requests",
            "Requests by tenant, route, model and outcome.",
            ["tenant", "route", "model", "outcome"],
            registry=r,
        )
        self.ttft = Histogram(
            "aigw_time_to_first_token_seconds",
            "From request to the first content event.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "aigw_stream_duration_seconds",
            "From request to the end of the stream.",
            ["route"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "aigw_tokens",
            "Tokens by tenant, model and direction (input or output).",
            ["tenant", "model", "direction"],
            registry=r,
        )
        self.spend = Counter(
            "aigw_spend_usd",
            "Spend in USD by tenant and model (models with a price).",
            ["tenant", "model"],
            registry=r,
        )
        self.retries = Counter("aigw_retries", "Retries of the same target.", registry=r)
        self.fallbacks = Counter("aigw_fallbacks", "Moves to the next target.", registry=r)
        self.continuations = Counter(
            "aigw_continuations", "Mid-stream continuations on another target.", registry=r
        )
        self.rate_limited = Counter(
            "aigw_rate_limited",
            "Requests refused by a tenant limit.",
            ["tenant", "limit"],
            registry=r,
        )
        self.open_streams = Gauge(
            "aigw_open_streams",
            "Streams open now (read from the stream registry).",
            multiprocess_mode="livesum",  # workers: the sum over the live ones
            registry=r,
        )
        self.overhead = Histogram(
            "aigw_overhead_seconds",
            "Request time not spent waiting on the upstream.",
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )

    def observe(self, record: RequestRecord) -> None:
        model = record.model or "none"
        self.requests.labels(record.tenant, record.route, model, record.outcome).inc()
        if record.rate_limit is not None:
            self.rate_limited.labels(record.tenant, record.rate_limit).inc()
        if record.outcome == "rejected":
            return
        self.duration.labels(record.route).observe(record.duration_s)
        if record.ttft_s is not None:
            self.ttft.labels(record.route).observe(record.ttft_s)
        self.overhead.observe(max(record.duration_s - record.upstream_wait_s, 0.0))
        if record.usage is not None:
            self.tokens.labels(record.tenant, model, "input").inc(record.usage.input_tokens)
            self.tokens.labels(record.tenant, model, "output").inc(record.usage.output_tokens)
        if record.cost_usd:
            self.spend.labels(record.tenant, model).inc(record.cost_usd)
        if record.stats is not None:
            self.retries.inc(record.stats.retries)
            self.fallbacks.inc(record.stats.fallbacks)
            self.continuations.inc(record.stats.continuations)

    def render(self) -> bytes:
        """This process's metrics, or with several workers every worker's, summed."""
        if self.shared_dir is None:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, self.shared_dir)  # type: ignore[no-untyped-call]
        return generate_latest(every_worker)
