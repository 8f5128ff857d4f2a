"""Bad input of every shape: a 4xx with one SSE error frame, and nothing else moves.

For each case: the right status, exactly one `error` event with a code and the request
id, no traceback, no upstream call, no circuit-breaker movement, and the gateway serves
the next good request.  Malformed HTTP framing has its own cases in
tests/gateway/test_http_faults.py.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest

from gateway.state import STATE
from tests.conftest import CHAT
from tests.sse_client import read_stream

USER = {"role": "user", "content": "hi"}


class Bad(NamedTuple):
    path: str
    body: bytes
    status: int
    content_type: str = "application/json"


def chat(**fields: Any) -> bytes:
    return json.dumps({"messages": [USER], **fields}).encode()


def generate(**fields: Any) -> bytes:
    return json.dumps({"prompt": "hi", **fields}).encode()


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


C, G = "/ai/stream/chat", "/ai/stream/generate"
SURROGATE = "\\ud800"  # as it stands in JSON text: an escape that decodes to no character

CORPUS: dict[str, Bad] = {
    # JSON that does not parse, or is not an object: 400
    "empty body": Bad(C, b"", 400),
    "only an open brace": Bad(C, b"{", 400),
    "not json": Bad(C, b"{not json", 400),
    "null": Bad(G, b"null", 400),
    "an array": Bad(G, b'["prompt"]', 400),
    "a string": Bad(G, b'"hi"', 400),
    "a number": Bad(G, b"123", 400),
    "true": Bad(G, b"true", 400),
    "trailing garbage": Bad(G, b'{"prompt":"hi"} x', 400),
    "NaN": Bad(G, b'{"prompt":"hi","temperature":NaN}', 400),
    "Infinity": Bad(G, b'{"prompt":"hi","temperature":Infinity}', 400),
    "single quotes": Bad(G, b"{'prompt':'hi'}", 400),
    "trailing comma": Bad(G, b'{"prompt":"hi",}', 400),
    "a comment": Bad(G, b'{"prompt":"hi" /* c */}', 400),
    "unterminated string": Bad(G, b'{"prompt":"hi', 400),
    "control character in a string": Bad(G, b'{"prompt":"a\x01b"}', 400),
    "arrays 10,000 deep": Bad(C, nested(10_000), 400),
    "arrays 1,025 deep": Bad(C, nested(1_025), 400),
    "objects 10,000 deep in metadata": Bad(
        C,
        b'{"messages":[{"role":"user","content":"hi"}],"metadata":'
        + b'{"a":' * 10_000
        + b"1"
        + b"}" * 10_000
        + b"}",
        400,
    ),
    "arrays 10,000 deep in content": Bad(
        C, b'{"messages":[{"role":"user","content":' + nested(10_000) + b"}]}", 400
    ),
    # bytes that are not UTF-8: 400
    "invalid UTF-8": Bad(G, b'{"prompt":"\xff\xfe"}', 400),
    "overlong UTF-8": Bad(G, b'{"prompt":"\xc0\xaf"}', 400),
    "a surrogate encoded as UTF-8": Bad(G, b'{"prompt":"\xed\xa0\x80"}', 400),
    "truncated UTF-8": Bad(G, b'{"prompt":"\xe2\x82"}', 400),
    # escapes that decode to no character (lone surrogates): 422
    "lone high surrogate in prompt": Bad(G, f'{{"prompt":"a{SURROGATE}"}}'.encode(), 422),
    "lone low surrogate in prompt": Bad(G, b'{"prompt":"a\\udc00"}', 422),
    "reversed surrogate pair": Bad(G, b'{"prompt":"\\udc00\\ud800"}', 422),
    "surrogate in system_prompt": Bad(
        G, f'{{"prompt":"hi","system_prompt":"{SURROGATE}"}}'.encode(), 422
    ),
    "surrogate in message content": Bad(
        C, f'{{"messages":[{{"role":"user","content":"{SURROGATE}"}}]}}'.encode(), 422
    ),
    "surrogate in a text block": Bad(
        C,
        f'{{"messages":[{{"role":"user","content":[{{"type":"text","text":"{SURROGATE}"}}]}}]}}'.encode(),
        422,
    ),
    "surrogate in system": Bad(
        C, f'{{"messages":[{{"role":"user","content":"hi"}}],"system":"{SURROGATE}"}}'.encode(), 422
    ),
    "surrogate in metadata.user_id": Bad(
        G, f'{{"prompt":"hi","metadata":{{"user_id":"{SURROGATE}"}}}}'.encode(), 422
    ),
    "surrogate in a metadata key": Bad(
        G, f'{{"prompt":"hi","metadata":{{"{SURROGATE}":"x"}}}}'.encode(), 422
    ),
    "surrogate in stop_sequences": Bad(
        G, f'{{"prompt":"hi","stop_sequences":["{SURROGATE}"]}}'.encode(), 422
    ),
    "surrogate in model": Bad(G, f'{{"prompt":"hi","model":"{SURROGATE}"}}'.encode(), 422),
    "surrogate in an ignored field": Bad(G, f'{{"prompt":"hi","x":"{SURROGATE}"}}'.encode(), 422),
    # sizes and ranges: 413 / 422
    "body over max_body_bytes": Bad(C, chat(system="x" * (1024 * 1024)), 413),
    "max_tokens 0": Bad(C, chat(max_tokens=0), 422),
    "max_tokens above the limit": Bad(C, chat(max_tokens=64_001), 422),
    "max_tokens 10**30": Bad(
        C, b'{"messages":[{"role":"user","content":"hi"}],"max_tokens":1' + b"0" * 30 + b"}", 422
    ),
    "1,001 messages": Bad(
        C,
        json.dumps(
            {"messages": [USER, {"role": "assistant", "content": "a"}] * 500 + [USER]}
        ).encode(),
        422,
    ),
    "17 stop sequences": Bad(G, generate(stop_sequences=["x"] * 17), 422),
    "empty stop sequence": Bad(G, generate(stop_sequences=[""]), 422),
    "model name of 201 characters": Bad(G, generate(model="m" * 201), 422),
    "empty prompt": Bad(G, b'{"prompt":""}', 422),
    "blank prompt": Bad(G, b'{"prompt":" \\n\\t "}', 422),
    "no messages": Bad(C, b'{"messages":[]}', 422),
    "temperature 2": Bad(G, generate(temperature=2), 422),
    "negative temperature": Bad(G, generate(temperature=-0.1), 422),
    "top_p 0": Bad(G, generate(top_p=0), 422),
    "top_k 0": Bad(G, generate(top_k=0), 422),
    # types: 422
    "prompt a number": Bad(G, b'{"prompt":42}', 422),
    "prompt a list": Bad(G, b'{"prompt":["hi"]}', 422),
    "prompt null": Bad(G, b'{"prompt":null}', 422),
    "messages an object": Bad(C, b'{"messages":{"role":"user","content":"hi"}}', 422),
    "a message that is a string": Bad(C, b'{"messages":["hi"]}', 422),
    "a message without a role": Bad(C, b'{"messages":[{"content":"hi"}]}', 422),
    "role system": Bad(C, b'{"messages":[{"role":"system","content":"hi"}]}', 422),
    "first message from the assistant": Bad(
        C, b'{"messages":[{"role":"assistant","content":"hi"},{"role":"user","content":"x"}]}', 422
    ),
    "content an object": Bad(C, b'{"messages":[{"role":"user","content":{"text":"hi"}}]}', 422),
    "a block of an unknown type": Bad(
        C, b'{"messages":[{"role":"user","content":[{"type":"image","text":"x"}]}]}', 422
    ),
    "max_tokens a string": Bad(C, chat(max_tokens="many"), 422),
    "max_tokens a fraction": Bad(C, chat(max_tokens=1.5), 422),
    "temperature a string": Bad(G, generate(temperature="hot"), 422),
    "metadata a list": Bad(G, generate(metadata=["user"]), 422),
    # the wrong media type: 415
    "text/plain": Bad(C, chat(), 415, "text/plain"),
    "form encoded": Bad(G, b"prompt=hi", 415, "application/x-www-form-urlencoded"),
}


@pytest.mark.parametrize("case", list(CORPUS.values()), ids=list(CORPUS))
async def test_bad_input_is_a_clear_4xx_and_nothing_else_moves(gateway, fake_anthropic, case):
    client = await gateway()
    breaker = client.server.app[STATE].current.shared.breaker

    async with client.post(
        case.path, data=case.body, headers={"Content-Type": case.content_type}
    ) as response:
        result = await read_stream(response)

    assert result.status == case.status, result.raw[:300]
    assert result.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert len(result.events) == 1 and result.naive == result.events
    event = result.events[0]
    assert event["type"] == "error" and event["code"] and event["request_id"]
    assert "Traceback" not in event["error"] and 'File "' not in event["error"]
    assert fake_anthropic.requests == 0
    assert all(c["recent_failures"] == 0 and c["trips"] == 0 for c in breaker.snapshot().values())

    async with client.post("/ai/stream/chat", json=CHAT) as response:
        after = await read_stream(response)
    assert after.last["type"] == "done"  # the gateway serves on
