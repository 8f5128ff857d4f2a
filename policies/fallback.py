"""Walk the chain's targets in order until one answers.

Before any text reached the client, a target that fails with an error that another
target may cure (`fallback`) hands over to the next target; a failed provider
credential skips the provider's remaining targets.  After text was sent, the stream ends
with the error, unless the chain opts into mid-stream continuation
(`on_stream_failure: continue`): then the next target is asked to continue the partial
answer, given to it as an assistant prefill, and its text is appended to the same
stream.  `done` then names the last model; usage is summed over every target used.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import replace

from policies.base import Call, Handler
from providers.base import Delta, Message, StreamEnd, TextDelta, UpstreamRequest
from providers.errors import UpstreamAuthError, UpstreamError


class Fallback:
    async def __call__(self, call: Call, call_next: Handler) -> AsyncGenerator[Delta, None]:
        stats = call.stats
        sent = ""  # text already streamed to the client
        last_error: UpstreamError | None = None
        dead_providers: set[str] = set()
        for target in call.chain.targets:
            if target.provider.name in dead_providers:
                continue
            if last_error is not None:
                if time.monotonic() >= call.deadline:
                    break
                stats.fallbacks += 1
                if sent:
                    stats.continuations += 1
            request = with_prefill(call.request, sent) if sent else call.request
            trim_leading_space = sent[-1:].isspace()
            try:
                stream = call_next(call.with_target(target).with_request(request))
                async with aclosing(stream):
                    async for delta in stream:
                        if isinstance(delta, StreamEnd):
                            _note_used(call, target.model)
                            stats.usage.add(delta.usage)
                            yield replace(delta, usage=stats.usage)
                            return
                        text = delta.text
                        if trim_leading_space:
                            text = text.lstrip()
                            trim_leading_space = not text
                        if text:
                            _note_used(call, target.model)
                            sent += text
                            yield delta if text is delta.text else TextDelta(text)
            except UpstreamError as error:
                if error.usage is not None:
                    stats.usage.add(error.usage)
                last_error = error
                continuing = call.chain.on_stream_failure == "continue"
                if not error.fallback or (sent and not continuing):
                    raise
                if isinstance(error, UpstreamAuthError):
                    dead_providers.add(target.provider.name)
        assert last_error is not None, "a chain has at least one target"
        raise last_error


def with_prefill(request: UpstreamRequest, partial: str) -> UpstreamRequest:
    """The original request, with the partial answer as the assistant's turn to continue.

    Trailing whitespace is left out (APIs reject it in a final assistant turn); the caller
    trims the continuation's leading whitespace so that none is sent twice.
    """
    messages = list(request.messages)
    prefill = partial.rstrip()
    if messages and messages[-1].role == "assistant":
        prefill = (messages.pop().content + prefill).rstrip()
    messages.append(Message("assistant", prefill))
    return replace(request, messages=tuple(messages))


def _note_used(call: Call, model: str) -> None:
    if not call.stats.models_used or call.stats.models_used[-1] != model:
        call.stats.models_used.append(model)
