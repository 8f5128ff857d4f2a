"""The tenant limiter the gateway calls: Redis when configured, in-process otherwise.

Redis trouble never hangs a request: the client has short socket time-outs, and after a
failure Redis is marked down and a background probe tries a write every second until
one succeeds.  (A PING is not enough: a Redis that answers it but refuses or holds
writes, out of memory, read-only after a failover or paused, would be marked up and down
again on every request.)  Meanwhile `on_error: fail_open` admits through the in-process
backend (the same limits, per replica) and `fail_closed` refuses with 503.  Each
admission is released by the backend that granted it.  Open leases are renewed in one
batch every third of their TTL.

A release that Redis did not confirm is kept (up to `MAX_UNSETTLED`) and sent again once
Redis answers: otherwise a stream that ended during an outage would keep its reservation
and be missing from the usage report.  Redis settles each admission once, so a release
that did reach Redis is not counted twice.

Cancellation (a client that hangs up) never splits an admission from its release: the
admission and the release each run in a task of their own that the caller only awaits.
A caller cancelled while its admission is being decided leaves it to be released at
once, with nothing used; a caller cancelled during its release leaves the release to
finish.  `aclose` waits for both kinds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

from policies.admission.limits import (
    DAY_MS,
    Admission,
    DayUsage,
    Decision,
    Limits,
    Plan,
    month_of,
)
from policies.admission.memory_backend import MemoryLimiter
from providers.base import Usage, estimate_tokens
from providers.errors import LimiterUnavailable

if TYPE_CHECKING:
    from policies.admission.redis_backend import RedisLimiter

log = logging.getLogger("policies.admission.limiter")

MAX_UNSETTLED = 10_000  # releases kept for replay while Redis is unreachable
_T = TypeVar("_T")


class _Settle(NamedTuple):
    admission: Admission
    used: Usage
    model: str
    micro_usd: int


class Limiter:
    def __init__(
        self,
        redis: RedisLimiter | None,
        on_error: Literal["fail_open", "fail_closed"] = "fail_open",
        lease_ttl_s: float = 60.0,
        probe_interval_s: float = 1.0,
        usage_retention_days: int = 35,
        memory: MemoryLimiter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` (seconds since the epoch) says which day a request counts on, and drives
        the in-process backend; Redis keeps its own time."""
        self._clock = clock
        self.memory = memory or MemoryLimiter(usage_retention_days, clock)
        self.redis = redis
        self._on_error = on_error
        self._lease_ttl_ms = int(lease_ttl_s * 1000)
        self._probe_interval_s = probe_interval_s
        self._redis_up = redis is not None
        self._failures: tuple[type[Exception], ...] = (OSError, TimeoutError)  # of Redis calls
        if redis is not None:
            from redis.exceptions import RedisError  # redis-py (~7 MiB): only with a Redis

            self._failures += (RedisError,)
        self._active: dict[str, Admission] = {}
        self._unsettled: deque[_Settle] = deque()
        self._dropped_settles = 0
        self._tasks: set[asyncio.Task[None]] = set()  # background: lease renewal, probes
        self._in_flight: set[asyncio.Task[Any]] = set()  # admissions and releases

    @property
    def state(self) -> dict[str, str | int]:
        if self.redis is None:
            return {"backend": "memory", "redis": "not configured"}
        unsettled = len(self._unsettled)
        if self._redis_up:
            return {"backend": "redis", "redis": "ok", "unsettled": unsettled}
        backend = "memory (fail-open)" if self._on_error == "fail_open" else "none (fail-closed)"
        return {"backend": backend, "redis": "down", "unsettled": unsettled}

    async def start(self) -> None:
        if self.redis is not None:
            try:
                await self.redis.load_scripts()
            except self._failures as exc:
                self._mark_down(exc)
        self._background(self._renew_leases())

    async def aclose(self) -> None:
        """Stop background work and release what is still held (shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        for admission in list(self._active.values()):
            await self.release(admission, Usage(input_tokens=admission.reserved_tokens), "")
        await self._replay_settles(last_try=True)  # even if the probe has not seen it back
        if self._unsettled:  # (the replay has already logged any dropped ones)
            log.warning(
                "%d releases were never confirmed by redis; their usage is missing from it",
                len(self._unsettled),
            )

    async def admit(
        self, tenant: str, limits: Limits, cost: int, cost_micro_usd: int = 0
    ) -> Decision:
        """Decide on one request (`cost` tokens, and `cost_micro_usd` of spend at most).  A
        caller cancelled while this waits (for Redis) gets the cancellation at once; an
        admission granted after that is released unused."""
        month, month_end_ms = month_of(self._clock())
        plan = Plan(
            tenant,
            limits,
            cost,
            uuid.uuid4().hex,
            self._lease_ttl_ms,
            today(self._clock),
            cost_micro_usd,
            month,
            month_end_ms,
        )
        deciding = self._in_flight_task(self._decide(plan))
        try:
            decision = await asyncio.shield(deciding)
        except asyncio.CancelledError:
            deciding.add_done_callback(self._release_unowned)
            raise
        return decision

    async def release(
        self, admission: Admission, used: Usage, model: str | None, micro_usd: int = 0
    ) -> None:
        """Give the slot back, settle the reservation to `used` and what it cost
        (`micro_usd`), and record the usage under `model` (the one that answered; none when
        nothing did).  Safe to call twice; a caller cancelled meanwhile does not stop it."""
        releasing = self._release(admission, used, model, micro_usd)
        await asyncio.shield(self._in_flight_task(releasing))

    def _in_flight_task(self, work: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        task = asyncio.ensure_future(work)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return task

    async def _decide(self, plan: Plan) -> Decision:
        decision = await self._admit(plan)
        if decision.admission is not None:
            self._active[plan.lease_id] = decision.admission
        return decision

    def _release_unowned(self, deciding: asyncio.Task[Decision]) -> None:
        """The caller gave up while its admission was being decided: hand it back."""
        if deciding.cancelled() or deciding.exception() is not None:
            return  # nothing was granted (a refusal to fail closed is nobody's to report)
        decision = deciding.result()
        if decision.admission is not None:
            self._in_flight_task(self._release(decision.admission, Usage(), None, 0))

    async def _release(
        self, admission: Admission, used: Usage, model: str | None, micro_usd: int
    ) -> None:
        if admission.released:
            return
        admission.released = True
        self._active.pop(admission.lease_id, None)
        settle = _Settle(admission, used, model or "none", micro_usd)
        if admission.backend is self.redis and not self._redis_up:
            self._keep_for_replay(settle)
            return
        try:
            await admission.backend.release(*settle)
        except self._failures as exc:
            self._keep_for_replay(settle)
            self._mark_down(exc)

    async def usage(self, tenant: str, day: int | None = None) -> DayUsage:
        """A tenant's usage on a UTC day (today by default), from where it is kept."""
        day = today(self._clock) if day is None else day
        if self.redis is not None and self._redis_up:
            with contextlib.suppress(*self._failures):
                return await self.redis.usage(tenant, day)
        return await self.memory.usage(tenant, day)

    async def _admit(self, plan: Plan) -> Decision:
        if self.redis is not None and self._redis_up:
            try:
                return await self.redis.admit(plan)
            except self._failures as exc:
                self._mark_down(exc)
        if self.redis is not None and self._on_error == "fail_closed":
            raise LimiterUnavailable(
                "The rate limiter is unavailable, so requests are refused for now.",
                retry_after=self._probe_interval_s,
            )
        return await self.memory.admit(plan)

    def _mark_down(self, exc: BaseException) -> None:
        if not self._redis_up:
            return
        self._redis_up = False
        log.warning(
            "redis unavailable (%s: %s); limiter is %s", type(exc).__name__, exc, self._on_error
        )
        self._background(self._probe_until_up())

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _probe_until_up(self) -> None:
        assert self.redis is not None
        while True:
            await asyncio.sleep(self._probe_interval_s)
            try:
                await self.redis.probe()
            except self._failures:
                continue
            self._redis_up = True
            log.info("redis is back; limiter uses it again")
            await self._replay_settles()
            return

    def _keep_for_replay(self, settle: _Settle) -> None:
        if len(self._unsettled) < MAX_UNSETTLED:
            self._unsettled.append(settle)
        else:
            self._dropped_settles += 1  # its lease expires on its own; its tokens stay reserved

    async def _replay_settles(self, last_try: bool = False) -> None:
        """Send the releases Redis did not confirm, oldest first, while it answers."""
        replayed = 0
        while self._unsettled and (self._redis_up or last_try):
            settle = self._unsettled[0]
            try:
                await settle.admission.backend.release(*settle)
            except self._failures as exc:
                if not last_try:
                    self._mark_down(exc)  # the next probe replays the rest
                break
            self._unsettled.popleft()
            replayed += 1
        if replayed:
            log.info("replayed %d releases that redis had not confirmed", replayed)
        if self._dropped_settles:
            log.warning(
                "%d releases were dropped while redis was down (more than %d waited)",
                self._dropped_settles,
                MAX_UNSETTLED,
            )
            self._dropped_settles = 0

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self._lease_ttl_ms / 3000)
            held = list(self._active.values())
            for backend in {a.backend for a in held}:
                mine = [a for a in held if a.backend is backend]
                try:
                    await backend.renew(mine, self._lease_ttl_ms)
                except self._failures as exc:
                    self._mark_down(exc)


def today(clock: Callable[[], float] = time.time) -> int:
    """The index of the UTC day `clock` is in (days since the epoch)."""
    return int(clock() * 1000) // DAY_MS


def tokens_to_settle(
    final: Usage | None, partial: Usage, sent_chars: int, input_estimate: int
) -> Usage:
    """Tokens a finished request really used, however it ended.

    A `done` carries the upstream's count; an upstream failure midway carries what the
    provider knew; a client that left midway is charged the input estimate plus the
    text it was sent (about four characters a token); a request that produced no text
    and no usage is charged nothing.
    """
    if final is not None:
        return final
    if partial.input_tokens or partial.output_tokens:
        return partial
    if not sent_chars:
        return Usage()
    return Usage(input_estimate, estimate_tokens(sent_chars))
