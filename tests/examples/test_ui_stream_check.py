"""The AI SDK's own parser reads the gateway's UI message stream (`?format=ui`):
`examples/web/ui-stream-check.mjs` posts useChat's body with `DefaultChatTransport`, which
validates every chunk against `uiMessageChunkSchema`, and builds the message from them
with `readUIMessageStream`."""

from __future__ import annotations

import json

import pytest

from gateway.cli import hash_api_key
from providers.demo import demo_answer_chunks
from tests.examples.test_examples import WEB, base_url, require, run
from tests.fakes.anthropic_server import Script

QUESTION = "What is FastAPI?"


@pytest.fixture
def node() -> str:
    path = require("node")
    if not (WEB / "node_modules/ai").exists():
        pytest.fail("examples/web has no node_modules: run the README's test command")
    return path


async def check(node: str, url: str, key: str = "") -> tuple[int, dict, str]:
    env = {"AI_GATEWAY_KEY": key} if key else {}
    code, out, err = await run(node, "ui-stream-check.mjs", url, QUESTION, env=env, cwd=WEB)
    return code, json.loads(out), err


async def test_the_ai_sdk_reads_the_stream_into_one_message_with_its_metadata(gateway, node):
    code, result, err = await check(node, await base_url(gateway))

    assert code == 0, (result, err)
    assert result["errors"] == []
    words = demo_answer_chunks(QUESTION, 30, 2048)
    assert result["text"] == "".join(words)
    assert result["chunks"] == [
        "start",
        "start-step",
        "text-start",
        *["text-delta"] * len(words),
        "text-end",
        "finish-step",
        "finish",
    ]
    assert result["messageId"].startswith("msg-")
    metadata = result["metadata"]
    assert (metadata["model"], metadata["stop_reason"]) == ("demo", "end_turn")
    assert metadata["usage"]["output_tokens"] == len(words)
    assert metadata["request_id"]


async def test_the_ai_sdk_reports_an_error_before_the_stream_with_its_text(gateway, node):
    url = await base_url(
        gateway, auth={"mode": "api_key"}, tenants=[{"id": "t", "keys": [hash_api_key("k1")]}]
    )
    code, result, _ = await check(node, url)

    assert code == 1
    assert result["chunks"] == []
    [error] = result["errors"]
    assert json.loads(error.removeprefix("data: "))["errorText"].startswith("Missing API key")

    code, result, _ = await check(node, url, key="k1")
    assert code == 0 and result["metadata"]["model"] == "demo"


async def test_the_ai_sdk_reports_an_upstream_failure_after_the_start(
    gateway, fake_anthropic, node
):
    fake_anthropic.script(Script(fault="error_event", fault_after=2))
    client = await gateway(
        chains={"default": {"targets": ["sonnet"], "retry": {"max_attempts": 1}}}
    )
    code, result, _ = await check(node, str(client.make_url("")).rstrip("/"))

    assert code == 1
    assert result["text"] == "Hello, "
    assert result["chunks"][-1] == "error"
    [error] = result["errors"]
    assert "overloaded" in error
