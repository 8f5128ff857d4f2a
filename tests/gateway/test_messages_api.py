"""`POST /v1/messages` through the official `anthropic` SDK: an app changes its base_url
and key, and streams, gets whole messages and typed errors, with tenants, limits and
fallback chains in force (the gateway in front of the fake Anthropic)."""

from __future__ import annotations

import anthropic
import pytest

from tests.fakes.anthropic_server import Script, count_input_tokens
from tests.gateway.test_tenancy import KEY_A, tenancy

SONNET, HAIKU = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"
ASK = [{"role": "user", "content": "What is FastAPI?"}]
LOCAL_AND_FAR = {
    "local": {"provider": "demo", "model": "demo"},
    "far": {"provider": "closed", "model": SONNET, "allow_retired": True},
}
UNREACHABLE = {  # (the key of the fake Anthropic, from the environment, at a closed port)
    "closed": {
        "type": "anthropic",
        "api_key": "${ANTHROPIC_API_KEY}",
        "base_url": "http://127.0.0.1:9",
    }
}


@pytest.fixture
async def sdk_for(gateway, redis_server, key_prefix):
    """An AsyncAnthropic client of the gateway, as an app would make one."""
    clients: list[anthropic.AsyncAnthropic] = []

    async def make(
        limits: dict | None = None, key: str = KEY_A, **config
    ) -> anthropic.AsyncAnthropic:
        setup = tenancy(redis_server.url, key_prefix, limits)
        setup["chains"] = {
            "default": {"targets": ["sonnet", "haiku"], "retry": {"max_attempts": 1}}
        }
        gateway_client = await gateway(**{**setup, **config})
        client = anthropic.AsyncAnthropic(
            base_url=str(gateway_client.make_url("")), api_key=key, max_retries=0
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_messages_stream_and_its_final_message(sdk_for, fake_anthropic):
    client = await sdk_for()
    async with client.messages.stream(model="sonnet", max_tokens=100, messages=ASK) as stream:
        text = "".join([chunk async for chunk in stream.text_stream])
        final = await stream.get_final_message()

    assert text == "Hello, world!"
    assert final.content[0].text == "Hello, world!"
    assert final.model == SONNET and final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 4)
    assert fake_anthropic.seen[-1].body["model"] == SONNET
    assert "system" not in fake_anthropic.seen[-1].body  # no date context on this route


async def test_create_with_stream_true_yields_the_api_events(sdk_for):
    client = await sdk_for()
    events = await client.messages.create(model="sonnet", max_tokens=100, messages=ASK, stream=True)
    kinds = [event.type async for event in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}


async def test_a_whole_message_without_stream(sdk_for):
    client = await sdk_for()
    message = await client.messages.create(
        model="sonnet", max_tokens=100, messages=ASK, system="Be brief."
    )
    assert message.content[0].text == "Hello, world!"
    assert message.model == SONNET and message.stop_reason == "end_turn"


async def test_a_fallback_before_the_first_byte_is_invisible_but_for_the_model(
    sdk_for, fake_anthropic
):
    fake_anthropic.script(Script(status=529), Script(chunks=["from ", "haiku"]))
    client = await sdk_for()
    async with client.messages.stream(model="default", max_tokens=100, messages=ASK) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text == "from haiku"
    assert final.model == HAIKU


async def test_errors_are_the_sdks_typed_errors(sdk_for, fake_anthropic):
    limited = await sdk_for({"requests_per_minute": 1})
    await limited.messages.create(model="sonnet", max_tokens=10, messages=ASK)
    with pytest.raises(anthropic.RateLimitError) as info:
        await limited.messages.create(model="sonnet", max_tokens=10, messages=ASK)
    assert int(info.value.response.headers["retry-after"]) >= 1

    stranger = await sdk_for(key="not-a-tenant-key")
    with pytest.raises(anthropic.AuthenticationError):
        await stranger.messages.create(model="sonnet", max_tokens=10, messages=ASK)

    client = await sdk_for()
    with pytest.raises(anthropic.BadRequestError) as bad:
        await client.messages.create(model="gpt-9", max_tokens=10, messages=ASK)
    assert "Unknown model 'gpt-9'" in bad.value.message

    fake_anthropic.script(Script(fault="error_event", fault_after=1))
    with pytest.raises(anthropic.APIStatusError) as mid_stream:
        async with client.messages.stream(model="sonnet", max_tokens=10, messages=ASK) as s:
            await s.get_final_message()
    assert "overloaded" in str(mid_stream.value.body)


async def test_a_malformed_block_is_a_400_that_names_it(sdk_for, fake_anthropic):
    client = await sdk_for()
    image = {"type": "image", "source": {"type": "file"}}
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.create(
            model="sonnet", max_tokens=10, messages=[{"role": "user", "content": [image]}]
        )
    assert "messages.0.content: block 0: not a valid 'image' block" in info.value.message
    assert fake_anthropic.requests == 0


async def test_the_sdk_lists_the_models_the_key_may_use(sdk_for):
    client = await sdk_for()
    page = await client.models.list()
    ids = [model.id for model in page.data]
    assert ids == sorted(ids) and {"default", "sonnet", "haiku", SONNET} <= set(ids)


async def test_the_sdk_gets_one_model_and_a_typed_404_for_another(sdk_for):
    client = await sdk_for()
    assert (await client.models.retrieve("sonnet")).id == "sonnet"
    with pytest.raises(anthropic.NotFoundError) as missing:
        await client.models.retrieve("gpt-9")
    assert "no model or chain named 'gpt-9'" in missing.value.message
    with pytest.raises(anthropic.NotFoundError) as nowhere:
        await client.beta.files.list()
    assert "this gateway serves POST /v1/messages" in nowhere.value.message


async def test_count_tokens_is_the_upstreams_count_where_a_target_counts(sdk_for, fake_anthropic):
    client = await sdk_for()
    counted = await client.messages.with_raw_response.count_tokens(
        model="sonnet", messages=ASK, system="Be brief."
    )
    assert counted.headers["x-gateway-token-count"] == "upstream"
    assert (await counted.parse()).input_tokens == count_input_tokens(
        {"system": "Be brief.", "messages": ASK}
    )
    sent = fake_anthropic.seen[-1].body
    assert sent == {"model": SONNET, "messages": ASK, "system": "Be brief."}


async def test_count_tokens_is_estimated_and_says_so_where_none_counts(sdk_for):
    client = await sdk_for(models=LOCAL_AND_FAR, providers=UNREACHABLE)
    for model in ("local", "far"):  # a demo target counts nothing; the other is unreachable
        counted = await client.messages.with_raw_response.count_tokens(model=model, messages=ASK)
        assert counted.headers["x-gateway-token-count"] == "estimated"
        assert (await counted.parse()).input_tokens == 4  # "What is FastAPI?": 16 characters


async def test_count_tokens_refused_upstream_is_the_clients_400(sdk_for, fake_anthropic):
    client = await sdk_for()
    with pytest.raises(anthropic.BadRequestError) as refused:
        await client.messages.count_tokens(model="sonnet", messages=ASK, extra_body={"bogus": 1})
    assert refused.value.status_code == 400
    assert fake_anthropic.rejections == ["bogus: Extra inputs are not permitted"]
