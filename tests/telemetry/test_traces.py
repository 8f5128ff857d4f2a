"""Traces end to end: the gateway exports to a real OTLP/HTTP receiver on loopback, in
front of the fake Anthropic, and the tests read what the receiver decoded.

Chain under test: sonnet → haiku, short backoffs so the suite is fast.
"""

from __future__ import annotations

import pytest

from gateway.cli import hash_api_key
from tests.conftest import CHAT, post_stream
from tests.fakes.anthropic_server import Script
from tests.telemetry.conftest import tracing_to
from tests.telemetry.receiver import OtlpReceiver, ReceivedSpan
from tests.waiting import wait_until

SONNET, HAIKU = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"
FAST_RETRY = {"max_attempts": 2, "initial_backoff_ms": 10, "max_backoff_ms": 50}
TWO_TARGETS = {"default": {"targets": ["sonnet", "haiku"], "retry": FAST_RETRY}}


async def spans_of_one_request(receiver: OtlpReceiver, clients: int) -> tuple[ReceivedSpan, list]:
    """The server span and its `clients` client spans, once all have arrived."""
    await wait_until(
        lambda: len(receiver.named("SERVER")) == 1 and len(receiver.named("CLIENT")) == clients,
        f"one server span and {clients} client spans",
    )
    (server,) = receiver.named("SERVER")
    attempts = sorted(receiver.named("CLIENT"), key=lambda s: s.attributes["gateway.attempt"])
    return server, attempts


async def test_a_retried_then_fallen_back_request_is_one_server_span_and_a_span_per_attempt(
    traced_gateway, receiver, fake_anthropic
):
    fake_anthropic.script(Script(status=529), Script(status=529), Script(chunks=["from ", "haiku"]))
    client = await traced_gateway(chains=TWO_TARGETS)
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.text == "from haiku"

    server, attempts = await spans_of_one_request(receiver, clients=3)
    assert server.name == "POST /ai/stream/chat"
    assert server.resource["service.name"] == "gateway-under-test"
    assert server.parent_id == ""
    assert {s.trace_id for s in attempts} == {server.trace_id}
    assert [s.parent_id for s in attempts] == [server.span_id] * 3
    assert [(s.name, s.attributes["gateway.target"]) for s in attempts] == [
        (f"chat {SONNET}", "sonnet"),
        (f"chat {SONNET}", "sonnet"),
        (f"chat {HAIKU}", "haiku"),
    ]
    for failed in attempts[:2]:
        assert failed.status == "ERROR"
        assert failed.attributes["error.type"] == "upstream_overloaded"
        assert failed.attributes["http.response.status_code"] == 529
        assert failed.attributes["gen_ai.response.finish_reasons"] == ("error",)
    answered = attempts[2].attributes
    assert attempts[2].status == "UNSET" and "error.type" not in answered
    assert answered["gen_ai.operation.name"] == "chat"
    assert answered["gen_ai.provider.name"] == "anthropic"
    assert answered["gen_ai.request.model"] == HAIKU
    assert answered["gen_ai.request.max_tokens"] == 500
    assert answered["gen_ai.response.model"] == HAIKU
    assert answered["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert (answered["gen_ai.usage.input_tokens"], answered["gen_ai.usage.output_tokens"]) == (
        11,
        2,
    )

    attributes = server.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.request.model"] == "default"  # the chain the request named
    assert attributes["gen_ai.request.max_tokens"] == 500
    assert attributes["gen_ai.response.model"] == HAIKU
    assert attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert attributes["gen_ai.usage.output_tokens"] == 2
    assert attributes["gateway.request_id"] == result.last["request_id"]
    assert attributes["gateway.tenant"] == "anonymous"
    assert attributes["http.response.status_code"] == 200
    assert (attributes["gateway.retries"], attributes["gateway.fallbacks"]) == (1, 1)
    assert "error.type" not in attributes

    retry = server.event("gateway.retry").attributes
    assert (retry["gateway.target"], retry["gateway.attempt"]) == ("sonnet", 1)
    assert retry["error.type"] == "upstream_overloaded"
    assert retry["gateway.retry.wait_s"] > 0
    fallback = server.event("gateway.fallback").attributes
    assert fallback == {
        "gateway.fallback.from": "sonnet",
        "gateway.fallback.to": "haiku",
        "error.type": "upstream_overloaded",
    }


async def test_each_upstream_request_carries_its_attempts_traceparent(
    traced_gateway, receiver, fake_anthropic
):
    fake_anthropic.script(Script(status=529), Script())
    client = await traced_gateway(chains=TWO_TARGETS)
    await post_stream(client, "/ai/stream/chat", CHAT)

    server, attempts = await spans_of_one_request(receiver, clients=2)
    sent = [seen.headers["traceparent"].split("-") for seen in fake_anthropic.seen]
    assert [(trace_id, parent) for _, trace_id, parent, _ in sent] == [
        (server.trace_id, attempt.span_id) for attempt in attempts
    ]


async def test_an_incoming_traceparent_is_continued(traced_gateway, receiver, fake_anthropic):
    trace_id, caller = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    client = await traced_gateway()
    traceparent = f"00-{trace_id}-{caller}-01"
    await post_stream(client, "/ai/stream/chat", CHAT, headers={"traceparent": traceparent})

    server, (attempt,) = await spans_of_one_request(receiver, clients=1)
    assert (server.trace_id, server.parent_id) == (trace_id, caller)
    assert attempt.trace_id == trace_id
    assert fake_anthropic.seen[0].headers["traceparent"].split("-")[1] == trace_id


async def test_a_clients_baggage_and_tracestate_never_reach_the_upstream(
    traced_gateway, fake_anthropic
):
    """Baggage (user ids, session tags) is the caller's: only the trace context goes on to
    a third-party upstream, whatever the propagators read."""
    client = await traced_gateway()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {
        "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
        "tracestate": "vendor=secret",
        "baggage": "user.email=someone@example.com,session=s3cr3t",
    }
    await post_stream(client, "/ai/stream/chat", CHAT, headers=headers)
    sent = {name.lower(): value for name, value in fake_anthropic.seen[0].headers.items()}
    assert sent["traceparent"].split("-")[1] == trace_id
    assert "baggage" not in sent and "tracestate" not in sent


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/ai/stream/chat", CHAT),
        ("/ai/stream/generate", {"prompt": "Write a haiku", "max_tokens": 100}),
        (
            "/v1/messages",
            {"model": "sonnet", "max_tokens": 100, "stream": True, "messages": CHAT["messages"]},
        ),
        (
            "/v1/chat/completions",
            {"model": "sonnet", "max_tokens": 100, "stream": True, "messages": CHAT["messages"]},
        ),
    ],
)
async def test_each_stream_route_and_drop_in_api_has_its_server_span(
    traced_gateway, receiver, path, body
):
    client = await traced_gateway()
    async with client.post(path, json=body) as response:
        assert response.status == 200
        await response.read()

    server, (attempt,) = await spans_of_one_request(receiver, clients=1)
    assert server.name == f"POST {path}"
    assert (server.attributes["http.route"], server.attributes["http.request.method"]) == (
        path,
        "POST",
    )
    assert attempt.parent_id == server.span_id
    assert server.attributes["gen_ai.response.model"] == SONNET


async def test_a_request_refused_before_the_chain_has_its_error_code(
    traced_gateway, receiver, fake_anthropic
):
    client = await traced_gateway()
    async with client.post("/ai/stream/chat", json={"messages": []}) as response:
        assert response.status == 422

    await wait_until(lambda: receiver.named("SERVER"), "the server span")
    (server,) = receiver.named("SERVER")
    assert server.attributes["error.type"] == "invalid_request"
    assert server.attributes["http.response.status_code"] == 422
    assert server.attributes["gateway.outcome"] == "rejected"
    assert receiver.named("CLIENT") == [] and fake_anthropic.requests == 0


async def test_a_target_cooling_down_is_skipped_with_an_event(
    traced_gateway, receiver, fake_anthropic
):
    chains = {
        "default": {
            "targets": ["sonnet", "haiku"],
            "retry": {"max_attempts": 1},
            "circuit_breaker": {"failure_threshold": 1, "cooldown_s": 600},
        }
    }
    fake_anthropic.script(Script(status=529))  # opens sonnet's circuit; haiku answers
    client = await traced_gateway(chains=chains)
    await post_stream(client, "/ai/stream/chat", CHAT)
    await wait_until(lambda: len(receiver.named("SERVER")) == 1, "the first request's span")
    receiver.spans.clear()

    await post_stream(client, "/ai/stream/chat", CHAT)

    server, (attempt,) = await spans_of_one_request(receiver, clients=1)
    assert attempt.attributes["gateway.target"] == "haiku"  # sonnet was never called
    skip = server.event("gateway.cooldown_skip").attributes
    assert (skip["gateway.target"], skip["gateway.circuit.state"]) == ("sonnet", "open")
    assert 0 < skip["gateway.cooldown.remaining_s"] <= 600
    assert server.event("gateway.fallback").attributes["error.type"] == "target_cooling_down"


async def test_a_mid_stream_continuation_is_an_event_and_a_marked_attempt(
    traced_gateway, receiver, fake_anthropic
):
    fake_anthropic.script(
        Script(chunks=["The ", "quick ", "brown ", "fox"], fault="drop", fault_after=2),
        Script(chunks=[" jumps", " over."]),
    )
    chains = {"default": {**TWO_TARGETS["default"], "on_stream_failure": "continue"}}
    client = await traced_gateway(chains=chains)
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.text == "The quick jumps over."

    server, (cut, continued) = await spans_of_one_request(receiver, clients=2)
    assert cut.attributes["error.type"] == "upstream_connection_error"
    assert "gateway.continuation" not in cut.attributes
    assert continued.attributes["gateway.continuation"] is True
    event = server.event("gateway.continuation").attributes
    assert (event["gateway.fallback.from"], event["gateway.fallback.to"]) == ("sonnet", "haiku")
    assert event["gateway.continuation.sent_chars"] == len("The quick ")
    assert server.attributes["gateway.continuations"] == 1


PROMPT, SYSTEM, ANSWER = "zebra-prompt-7781", "walrus-system-5523", "okapi-answer-9902"
KEY = "key-of-the-traced-tenant-01"


def tenant(log_content: bool) -> dict:
    return {
        "auth": {"mode": "api_key"},
        "tenants": [{"id": "t", "keys": [hash_api_key(KEY)], "log_content": log_content}],
    }


def texts(spans: list[ReceivedSpan]) -> str:
    """Every name and attribute value the receiver got, events' too, as one string."""
    values = [s.name for s in spans]
    for span in spans:
        values += map(str, span.attributes.values())
        for event in span.events:
            values += [event.name, *map(str, event.attributes.values())]
    return "\n".join(values)


async def test_no_prompt_or_completion_text_in_spans_by_default(
    traced_gateway, receiver, fake_anthropic
):
    fake_anthropic.default = Script(chunks=[ANSWER])
    client = await traced_gateway(**tenant(log_content=False))
    headers = {"Authorization": f"Bearer {KEY}"}
    chat = {"messages": [{"role": "user", "content": PROMPT}], "system_prompt": SYSTEM}
    await post_stream(client, "/ai/stream/chat", chat, headers=headers)
    messages = {"model": "sonnet", "max_tokens": 50, "stream": True, "system": SYSTEM}
    messages["messages"] = [{"role": "user", "content": PROMPT}]
    await post_stream(client, "/v1/messages", messages, headers={"x-api-key": KEY})
    token = await (await client.post("/ai/stream/token", headers=headers)).json()
    url = f"/ai/stream/generate?prompt={PROMPT}&token={token['token']}"
    async with client.get(url) as response:
        assert ANSWER in (await response.read()).decode()

    await wait_until(lambda: len(receiver.named("SERVER")) == 3, "three server spans")
    await wait_until(lambda: len(receiver.named("CLIENT")) == 3, "three client spans")
    seen = texts(receiver.spans)
    assert "/ai/stream/generate" in seen
    for secret in (PROMPT, SYSTEM, ANSWER, token["token"], KEY):
        assert secret not in seen


async def test_an_opted_in_tenants_prompt_and_completion_are_genai_messages(
    traced_gateway, receiver, fake_anthropic
):
    fake_anthropic.default = Script(chunks=[ANSWER])
    client = await traced_gateway(**tenant(log_content=True))
    chat = {"messages": [{"role": "user", "content": PROMPT}]}
    await post_stream(client, "/ai/stream/chat", chat, headers={"Authorization": f"Bearer {KEY}"})

    server, (attempt,) = await spans_of_one_request(receiver, clients=1)
    assert server.attributes["gen_ai.input.messages"] == (
        '[{"role":"user","parts":[{"type":"text","content":"' + PROMPT + '"}]}]'
    )
    assert ANSWER in server.attributes["gen_ai.output.messages"]
    assert PROMPT not in texts([attempt])  # the attempt's span never holds content


async def test_spans_still_buffered_are_exported_when_the_app_shuts_down(
    receiver, monkeypatch, gateway
):
    tracing_to(monkeypatch, receiver, delay_ms=600_000)  # nothing leaves on a timer
    client = await gateway()
    await post_stream(client, "/ai/stream/chat", CHAT)
    assert receiver.spans == []

    await client.close()

    assert [s.kind for s in receiver.spans] == ["CLIENT", "SERVER"]
    assert receiver.exports == 1
