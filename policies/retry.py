"""Retry the same target while it fails retryably and no text was sent (tenacity).

Backoff is exponential with jitter (`initial_backoff_ms` doubling up to
`max_backoff_ms`); an upstream `Retry-After` is honoured instead when it is no longer than
`max_retry_after_s` (a longer one is not waited for: the fallback step moves on).
Attempts stop at `max_attempts` or when the next wait would pass the request's deadline.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import aclosing

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from policies import tracing
from policies.base import Call, Handler
from policies.settings import RetrySettings
from providers.base import Delta
from providers.errors import GatewayError, UpstreamProtocolError


class Retry:
    async def __call__(self, call: Call, call_next: Handler) -> AsyncGenerator[Delta, None]:
        settings = call.current_target.retry
        # The first attempt runs before tenacity is set up: most requests need no retry,
        # and its machinery costs the first token about a tenth of a millisecond.
        stream = call_next(call)
        try:
            first = await _first_delta(stream)
        except Exception as error:
            if not worth_retrying(error, settings):
                raise
            stream, first = await _retried(call, call_next, settings, error)
        async with aclosing(stream):
            yield first
            async for delta in stream:
                yield delta


async def _retried(
    call: Call, call_next: Handler, settings: RetrySettings, failed: Exception
) -> tuple[AsyncGenerator[Delta, None], Delta]:
    """The attempts after a first one that failed with `failed`: tenacity takes that
    failure as its attempt 1 (so its count, back-off and Retry-After are as if it had run
    it), then waits and tries again."""
    stream: AsyncGenerator[Delta, None] | None = None
    first: Delta | None = None
    first_failure: Exception | None = failed

    def count_retry(state: RetryCallState) -> None:
        call.stats.retries += 1
        error = state.outcome.exception() if state.outcome is not None else None
        tracing.retry_event(call, error, state.upcoming_sleep)

    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(settings.max_attempts) | _past_deadline(call.deadline),
        wait=_backoff(settings),
        retry=retry_if_exception(lambda error: worth_retrying(error, settings)),
        before_sleep=count_retry,
        reraise=True,
    ):
        with attempt:
            if first_failure is not None:
                error, first_failure = first_failure, None
                raise error
            stream = call_next(call)
            first = await _first_delta(stream)
    assert stream is not None and first is not None
    return stream, first


def worth_retrying(error: BaseException, settings: RetrySettings) -> bool:
    if not isinstance(error, GatewayError) or not error.retryable:
        return False
    return error.retry_after is None or error.retry_after <= settings.max_retry_after_s


async def _first_delta(stream: AsyncGenerator[Delta, None]) -> Delta:
    try:
        return await anext(stream)
    except StopAsyncIteration:
        raise UpstreamProtocolError("The upstream stream ended before any data.") from None
    except BaseException:
        await stream.aclose()
        raise


def _backoff(settings: RetrySettings) -> wait_exponential_jitter:
    return _RetryAfterOr(
        multiplier=settings.initial_backoff_ms / 1000,
        max=settings.max_backoff_ms / 1000,
        jitter=settings.initial_backoff_ms / 1000,
    )


class _RetryAfterOr(wait_exponential_jitter):
    """The upstream's Retry-After when it gave one, else exponential backoff with jitter."""

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, GatewayError) and error.retry_after is not None:
            return error.retry_after
        return float(super().__call__(retry_state))


class _past_deadline(stop_base):
    """Stop when the next wait would end after the request's overall deadline."""

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        upcoming = retry_state.upcoming_sleep or 0.0
        return time.monotonic() + upcoming >= self._deadline
