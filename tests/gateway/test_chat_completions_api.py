"""`POST /v1/chat/completions` through the official `openai` SDK: an app changes its
base_url and key, and streams (with usage), gets whole completions and typed errors, with
tenants, limits and fallback chains in force (the gateway in front of the fake Anthropic)."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.anthropic_server import Script
from tests.gateway.test_tenancy import KEY_A, tenancy

SONNET, HAIKU = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"
ASK = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is FastAPI?"}]


@pytest.fixture
async def sdk_for(gateway, redis_server, key_prefix):
    """An AsyncOpenAI client of the gateway, as an app would make one."""
    clients: list[openai.AsyncOpenAI] = []

    async def make(limits: dict | None = None, key: str = KEY_A) -> openai.AsyncOpenAI:
        setup = tenancy(redis_server.url, key_prefix, limits)
        setup["chains"] = {
            "default": {"targets": ["sonnet", "haiku"], "retry": {"max_attempts": 1}}
        }
        gateway_client = await gateway(**setup)
        client = openai.AsyncOpenAI(
            base_url=str(gateway_client.make_url("/v1")), api_key=key, max_retries=0
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_a_streamed_completion_with_usage(sdk_for, fake_anthropic):
    client = await sdk_for()
    chunks = await client.chat.completions.create(
        model="sonnet", messages=ASK, stream=True, stream_options={"include_usage": True}
    )
    seen = [chunk async for chunk in chunks]

    text = "".join(c.choices[0].delta.content or "" for c in seen if c.choices)
    assert text == "Hello, world!"
    assert [c.choices[0].finish_reason for c in seen if c.choices][-1] == "stop"
    assert seen[-1].choices == [] and seen[-1].usage is not None
    assert (seen[-1].usage.prompt_tokens, seen[-1].usage.completion_tokens) == (11, 4)
    assert {c.model for c in seen} == {SONNET}
    sent = fake_anthropic.seen[-1].body
    assert sent["system"] == "Be brief."  # the system message, and no date added
    assert sent["messages"] == [{"role": "user", "content": "What is FastAPI?"}]


async def test_a_whole_completion(sdk_for):
    client = await sdk_for()
    completion = await client.chat.completions.create(model="sonnet", messages=ASK)
    assert completion.choices[0].message.content == "Hello, world!"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == SONNET
    assert completion.usage is not None and completion.usage.total_tokens == 15


async def test_a_fallback_before_the_first_byte_names_the_model_that_served(
    sdk_for, fake_anthropic
):
    fake_anthropic.script(Script(status=529), Script(chunks=["from ", "haiku"]))
    client = await sdk_for()
    completion = await client.chat.completions.create(model="default", messages=ASK)
    assert completion.choices[0].message.content == "from haiku"
    assert completion.model == HAIKU


async def test_a_max_tokens_stop_is_length(sdk_for, fake_anthropic):
    fake_anthropic.script(Script(stop_reason="max_tokens"))
    client = await sdk_for()
    completion = await client.chat.completions.create(model="sonnet", messages=ASK, max_tokens=4)
    assert completion.choices[0].finish_reason == "length"


async def test_errors_are_the_sdks_typed_errors(sdk_for, fake_anthropic):
    limited = await sdk_for({"requests_per_minute": 1})
    await limited.chat.completions.create(model="sonnet", messages=ASK)
    with pytest.raises(openai.RateLimitError) as info:
        await limited.chat.completions.create(model="sonnet", messages=ASK)
    assert int(info.value.response.headers["retry-after"]) >= 1

    stranger = await sdk_for(key="not-a-tenant-key")
    with pytest.raises(openai.AuthenticationError):
        await stranger.chat.completions.create(model="sonnet", messages=ASK)

    client = await sdk_for()
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model="gpt-9", messages=ASK)
    assert "Unknown model 'gpt-9'" in bad.value.message

    fake_anthropic.script(Script(fault="error_event", fault_after=1))
    with pytest.raises(openai.APIError) as mid_stream:
        chunks = await client.chat.completions.create(model="sonnet", messages=ASK, stream=True)
        async for _ in chunks:
            pass
    assert "overloaded" in str(mid_stream.value.message)


async def test_a_malformed_part_or_tool_is_a_400_that_names_it(sdk_for, fake_anthropic):
    client = await sdk_for()
    with pytest.raises(openai.BadRequestError) as part:
        await client.chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": [{"type": "image_url"}]}]
        )
    assert "messages.0.content: part 0: not a valid 'image_url' part" in part.value.message
    with pytest.raises(openai.BadRequestError) as tool:
        await client.chat.completions.create(
            model="sonnet", messages=ASK, tools=[{"type": "function", "function": {}}]
        )
    assert "tools: 0: a function tool needs a 'function' with a 'name'" in tool.value.message
    with pytest.raises(openai.BadRequestError) as answer:
        await client.chat.completions.create(
            model="sonnet", messages=[*ASK, {"role": "tool", "content": "18 C"}]
        )
    assert "needs the 'tool_call_id' it answers" in answer.value.message
    assert fake_anthropic.requests == 0


async def test_the_sdk_gets_one_model_and_a_typed_404_for_another(sdk_for):
    client = await sdk_for()
    assert (await client.models.retrieve("sonnet")).owned_by == "gateway"
    with pytest.raises(openai.NotFoundError) as missing:
        await client.models.retrieve("gpt-9")
    assert "no model or chain named 'gpt-9'" in missing.value.message
    with pytest.raises(openai.NotFoundError) as nowhere:
        await client.embeddings.create(model="sonnet", input="hi")
    assert "this gateway serves POST /v1/messages" in nowhere.value.message


async def test_the_sdk_lists_the_models_the_key_may_use(sdk_for):
    client = await sdk_for()
    page = await client.models.list()
    ids = [model.id for model in page.data]
    assert ids == sorted(ids) and {"default", "sonnet", "haiku", SONNET} <= set(ids)
    assert {model.owned_by for model in page.data} == {"gateway"}
