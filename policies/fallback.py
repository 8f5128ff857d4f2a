"""Walk the chain's targets in order until one answers.

Before any text reached the client, a target that fails with an error that another
target may cure (`fallback`) hands over to the next target; a failed provider
credential skips the provider's remaining targets.  After text was sent, the stream ends
with the error, unless the chain opts into mid-stream continuation
(`on_stream_failure: continue`): then the next target is asked to continue the partial
answer (`UpstreamRequest.continue_from`: each provider asks in the way its model allows),
and its text, joined at the seam without repeats (`policies.seam`), is appended to the
same stream.  `done` then names the last model; usage is summed over every target used.
A stream that ends, whatever its stop reason (a `refusal` too), is never continued, and
neither is one that sent more than text (a tool call or thinking cannot be resumed).
A target that cannot take the request at all (tools or images it lacks) is skipped.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import replace

from policies import tracing
from policies.base import Call, Handler, cannot_serve
from policies.seam import Seam
from providers.base import Delta, StreamEnd, TextDelta
from providers.errors import UpstreamAuthError, UpstreamError


class Fallback:
    async def __call__(self, call: Call, call_next: Handler) -> AsyncGenerator[Delta, None]:
        stats = call.stats
        sent = ""  # text already streamed to the client
        sent_parts = False  # whether anything but text was (tool calls, thinking)
        last_error: UpstreamError | None = None
        failed = ""  # the alias of the target that `last_error` came from
        dead_providers: set[str] = set()
        for target in call.chain.targets:
            if target.provider.name in dead_providers:
                continue
            if (refusal := cannot_serve(call.request, target)) is not None:
                if last_error is None:
                    last_error, failed = refusal, target.alias
                continue
            if last_error is not None:
                if time.monotonic() >= call.deadline:
                    break
                stats.fallbacks += 1
                if sent:
                    stats.continuations += 1
                tracing.handover_event(failed, target, last_error, len(sent))
            request = replace(call.request, continue_from=sent) if sent else call.request
            seam = Seam(sent)
            try:
                stream = call_next(call.with_target(target).with_request(request))
                async with aclosing(stream):
                    async for delta in stream:
                        if isinstance(delta, TextDelta):
                            text, end = seam.feed(delta.text), None
                        elif isinstance(delta, StreamEnd):
                            text, end = seam.flush(), delta
                        else:
                            if held := seam.flush():
                                sent += held
                                yield TextDelta(held)
                            _note_used(call, target.model)
                            sent_parts = True
                            yield delta
                            continue
                        if text:
                            _note_used(call, target.model)
                            sent += text
                            yield TextDelta(text)
                        if end:
                            _note_used(call, target.model)
                            stats.add_usage(end.usage, target)
                            yield replace(end, usage=stats.usage)
                            return
            except UpstreamError as error:
                if held := seam.flush():  # what this target said before it failed
                    _note_used(call, target.model)
                    sent += held
                    yield TextDelta(held)
                if error.usage is not None:
                    stats.add_usage(error.usage, target)
                last_error, failed = error, target.alias
                continuing = call.chain.on_stream_failure == "continue"
                if not error.fallback or sent_parts or (sent and not continuing):
                    raise
                if isinstance(error, UpstreamAuthError):
                    dead_providers.add(target.provider.name)
        assert last_error is not None, "a chain has at least one target"
        raise last_error


def _note_used(call: Call, model: str) -> None:
    if not call.stats.models_used or call.stats.models_used[-1] != model:
        call.stats.models_used.append(model)
