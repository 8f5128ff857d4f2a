"""The fake OpenAI server, driven by the official `openai` SDK: if the SDK reads it as it
reads OpenAI, the adapter tests against it mean something."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.openai_server import API_KEY, FakeOpenAI
from tests.fakes.script import Script


def sdk(fake: FakeOpenAI, key: str = API_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=key, base_url=fake.url, max_retries=0)


async def test_sdk_streams_text_finish_reason_and_usage(fake_openai):
    client = sdk(fake_openai)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello, world!"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 4)
    await client.close()


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
async def test_sdk_raises_its_own_error_classes_for_the_fakes_errors(
    fake_openai, status, error_class
):
    fake_openai.script(Script(status=status, retry_after="2"))
    client = sdk(fake_openai)
    with pytest.raises(error_class) as info:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert info.value.status_code == status
    await client.close()


async def test_sdk_raises_on_an_error_object_inside_the_stream(fake_openai):
    fake_openai.script(Script(fault="error_event", fault_after=1))
    client = sdk(fake_openai)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    await client.close()


async def test_wrong_key_is_401(fake_openai):
    client = sdk(fake_openai, key="sk-wrong")
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    await client.close()
