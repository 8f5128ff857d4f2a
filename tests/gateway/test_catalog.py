"""`GET /ai/stream/models`: the names a key may use and its default, authenticated like
the streams, errors as JSON in the gateway's shape."""

from __future__ import annotations

from typing import Any

from gateway.cli import hash_api_key
from tests.conftest import CHAT, post_stream

SONNET, HAIKU = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"
KEY_ALL, KEY_SOME, KEY_FIRST = "catalog-key-all-01", "catalog-key-some-02", "catalog-key-first3"
CHAINS = {"default": {"targets": ["sonnet"]}, "fast": {"targets": ["haiku"]}}
EVERY_NAME = sorted(["default", "fast", "sonnet", "haiku", SONNET, HAIKU])


def tenants() -> dict[str, Any]:
    return {
        "auth": {"mode": "api_key"},
        "chains": CHAINS,
        "tenants": [
            {"id": "all", "keys": [hash_api_key(KEY_ALL)]},
            {
                "id": "some",
                "keys": [hash_api_key(KEY_SOME)],
                "chains": ["haiku", "fast"],
                "default_chain": "fast",
            },
            {"id": "first", "keys": [hash_api_key(KEY_FIRST)], "chains": ["haiku", "fast"]},
        ],
    }


async def models(client, **kwargs: Any) -> tuple[int, str, dict[str, Any]]:
    async with client.get("/ai/stream/models", **kwargs) as response:
        return response.status, response.content_type, await response.json()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_an_unrestricted_key_gets_every_name_and_the_gateways_default(gateway):
    client = await gateway(**tenants())
    assert await models(client, headers=bearer(KEY_ALL)) == (
        200,
        "application/json",
        {"default": "default", "models": EVERY_NAME},
    )


async def test_a_restricted_key_gets_its_names_sorted_and_its_own_default(gateway):
    client = await gateway(**tenants())
    _, _, some = await models(client, headers={"X-API-Key": KEY_SOME})
    _, _, first = await models(client, headers=bearer(KEY_FIRST))
    assert some == {"default": "fast", "models": ["fast", "haiku"]}
    # no default of its own and the gateway's is not allowed: its first chain serves
    assert first == {"default": "haiku", "models": ["fast", "haiku"]}


async def test_the_default_named_is_what_serves_a_request_naming_none(gateway, fake_anthropic):
    client = await gateway(**tenants())
    for key, served_by in [(KEY_ALL, SONNET), (KEY_SOME, HAIKU), (KEY_FIRST, HAIKU)]:
        _, _, listed = await models(client, headers=bearer(key))
        unnamed = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(key))
        named = await post_stream(
            client, "/ai/stream/chat", {**CHAT, "model": listed["default"]}, headers=bearer(key)
        )
        assert unnamed.last["model"] == named.last["model"] == served_by


async def test_without_auth_every_name_is_listed(gateway):
    client = await gateway(chains=CHAINS)
    assert (await models(client))[2] == {"default": "default", "models": EVERY_NAME}


async def test_a_stream_token_in_the_query_authenticates(gateway):
    client = await gateway(**tenants())
    async with client.post("/ai/stream/token", headers=bearer(KEY_SOME)) as response:
        token = (await response.json())["token"]
    status, _, body = await models(client, params={"token": token})
    assert (status, body["models"]) == (200, ["fast", "haiku"])


async def test_missing_unknown_and_forged_credentials_are_401_json(gateway):
    client = await gateway(**tenants())
    missing = await models(client)
    unknown = await models(client, headers=bearer("not-a-key"))
    forged = await models(client, params={"token": "abc.def"})
    for status, content_type, body in (missing, unknown, forged):
        assert (status, content_type, body["code"]) == (401, "application/json", "unauthorized")
        assert set(body) == {"error", "code"}
    assert unknown[2]["error"] == "Unknown API key."


async def test_a_wrong_method_is_answered_in_json(gateway):
    client = await gateway(**tenants())
    async with client.post("/ai/stream/models", headers=bearer(KEY_ALL)) as response:
        assert (response.status, response.content_type) == (405, "application/json")
        assert (await response.json())["code"] == "method_not_allowed"
        assert response.headers["Allow"] == "GET,HEAD"
