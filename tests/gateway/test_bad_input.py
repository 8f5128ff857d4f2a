"""Bad input: the right status, one SSE error frame a person can act on, no upstream call."""

from __future__ import annotations

import pytest

from tests.conftest import CHAT
from tests.sse_client import read_stream

USER = {"role": "user", "content": "hi"}


async def _post_raw(client, path, data, content_type="application/json"):
    async with client.post(path, data=data, headers={"Content-Type": content_type}) as response:
        return await read_stream(response)


def _assert_error_frame(result, status, *fragments):
    assert result.status == status
    assert result.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert len(result.events) == 1
    event = result.events[0]
    assert event["type"] == "error"
    for fragment in fragments:
        assert fragment in event["error"]
    assert "Traceback" not in event["error"]
    assert result.naive == result.events


async def test_body_that_is_not_json_is_400(gateway, fake_anthropic):
    client = await gateway()
    result = await _post_raw(client, "/ai/stream/chat", b"{not json")
    _assert_error_frame(result, 400, "not valid JSON")
    assert fake_anthropic.requests == 0


async def test_json_that_is_not_an_object_is_400(gateway):
    client = await gateway()
    result = await _post_raw(client, "/ai/stream/generate", b'["prompt"]')
    _assert_error_frame(result, 400, "JSON object")


async def test_wrong_content_type_is_415(gateway):
    client = await gateway()
    result = await _post_raw(client, "/ai/stream/chat", b'{"messages":[]}', "text/plain")
    _assert_error_frame(result, 415, "Content-Type: application/json")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "messages: is required"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        (
            {"messages": [{"role": "assistant", "content": "x"}, USER]},
            "first message must have role 'user'",
        ),
        ({"messages": [{"role": "user", "content": 42}]}, "messages.0.content: must be a string"),
        ({"messages": [{"role": "user", "content": "  "}]}, "empty content"),
        ({"messages": [USER], "max_tokens": 0}, "max_tokens: must be between 1 and 64000"),
        ({"messages": [USER], "max_tokens": 64001}, "max_tokens: must be between 1 and 64000"),
        ({"messages": [USER], "temperature": 1.5}, "temperature"),
        ({"messages": [USER], "temperature": -0.1}, "temperature"),
        ({"messages": [USER], "max_tokens": "many"}, "max_tokens"),
    ],
)
async def test_invalid_chat_bodies_are_422_naming_the_field(
    gateway, fake_anthropic, body, fragment
):
    client = await gateway()
    async with client.post("/ai/stream/chat", json=body) as response:
        result = await read_stream(response)
    _assert_error_frame(result, 422, fragment)
    assert fake_anthropic.requests == 0


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "prompt: is required"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt: must not be blank"),
    ],
)
async def test_missing_or_empty_prompt_is_422(gateway, body, fragment):
    client = await gateway()
    async with client.post("/ai/stream/generate", json=body) as response:
        result = await read_stream(response)
    _assert_error_frame(result, 422, fragment)


async def test_body_over_the_limit_is_413(gateway, fake_anthropic):
    client = await gateway(server={"max_body_bytes": 2048})
    big = {"messages": [{"role": "user", "content": "x" * 4096}]}
    async with client.post("/ai/stream/chat", json=big) as response:
        result = await read_stream(response)
    _assert_error_frame(result, 413, "larger than 2048 bytes")
    assert fake_anthropic.requests == 0


async def test_default_body_limit_is_one_mebibyte(gateway):
    client = await gateway()
    big = {"messages": [{"role": "user", "content": "x" * (1024 * 1024)}]}
    async with client.post("/ai/stream/chat", json=big) as response:
        result = await read_stream(response)
    _assert_error_frame(result, 413, "1048576")


async def test_unknown_fields_are_ignored(gateway):
    client = await gateway()
    async with client.post(
        "/ai/stream/chat", json={**CHAT, "stream": True, "foo": [1]}
    ) as response:
        result = await read_stream(response)
    assert result.status == 200
    assert result.last["type"] == "done"


async def test_gateway_keeps_serving_after_bad_requests(gateway):
    client = await gateway()
    for _ in range(3):
        await _post_raw(client, "/ai/stream/chat", b"\xff\xfe garbage")
    async with client.post("/ai/stream/chat", json=CHAT) as response:
        result = await read_stream(response)
    assert result.last["type"] == "done"
