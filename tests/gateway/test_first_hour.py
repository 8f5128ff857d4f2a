"""What a new user or operator meets in the first hour: errors caught where they belong,
messages for the client that gets them, readiness that follows the configured policy."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gateway.chat_cli import chat
from gateway.cli import hash_api_key, main
from gateway.config import ConfigError, parse_config
from tests.conftest import CHAT, post_stream
from tests.gateway.test_tenancy import KEY_A, bearer, tenancy

REPO = Path(__file__).resolve().parents[2]


def test_a_redis_url_without_a_scheme_is_a_config_error_not_a_traceback():
    with pytest.raises(ConfigError) as info:
        parse_config("redis: {url: 'localhost:6391'}\nproviders: {}\nmodels: {}\nchains: {}\n")
    assert "redis.url: 'localhost:6391' has no scheme: write redis://localhost:6391" in str(
        info.value
    )


def test_a_raw_key_in_tenant_keys_says_to_run_hash_key():
    text = (
        "providers: {d: {type: demo}}\nmodels: {m: {provider: d, model: x}}\n"
        "chains: {default: {targets: [m]}}\ntenants: [{id: t, keys: [my-raw-secret-key]}]\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert "tenants[0].keys" in message and "run `ai-gateway hash-key`" in message
    assert "my-raw-secret-key" not in message


def test_a_yaml_syntax_error_names_the_file_and_the_line():
    with pytest.raises(ConfigError) as info:
        parse_config("server:\n  port: [1\n", source="/etc/gw/config.yaml")
    assert str(info.value).startswith("/etc/gw/config.yaml: line 3, column 1: not valid YAML")


def test_hash_key_with_no_key_refuses_instead_of_hashing_nothing(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main(["hash-key"]) == 2
    assert "no key given" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("a-real-key\n"))
    assert main(["hash-key"]) == 0
    assert capsys.readouterr().out.strip() == hash_api_key("a-real-key")


async def test_a_missing_key_is_explained_to_the_client_that_sent_the_request(
    gateway, redis_server, key_prefix
):
    client = await gateway(**tenancy(redis_server.url, key_prefix))
    as_page = await post_stream(
        client, "/ai/stream/chat", CHAT, headers={"X-Gateway-Client": "demo-page"}
    )
    as_cli = await post_stream(
        client, "/ai/stream/chat", CHAT, headers={"User-Agent": "ai-gateway-chat/0.1"}
    )
    async with client.get("/ai/stream/generate?prompt=hi") as response:
        as_event_source = (await response.text()).strip()
    plain = await post_stream(client, "/ai/stream/chat", CHAT)

    assert "fill in the key field" in as_page.last["error"]
    assert "export AI_GATEWAY_KEY" in as_cli.last["error"]
    assert "?token=" in as_event_source and "POST /ai/stream/token" in as_event_source
    assert "Authorization: Bearer" in plain.last["error"]
    assert {as_page.status, as_cli.status, plain.status} == {401}


async def test_a_429_says_the_same_wait_in_retry_after_and_ratelimit_reset(
    gateway, redis_server, key_prefix
):
    limits = {"requests_per_minute": 1}
    client = await gateway(**tenancy(redis_server.url, key_prefix, limits))
    await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))
    refused = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))

    assert refused.status == 429
    assert refused.headers["Retry-After"] == refused.headers["RateLimit-Reset"]


async def test_browsers_may_read_the_rate_limit_headers(gateway):
    client = await gateway()
    origin = {"Origin": "http://localhost:3000"}
    async with client.post("/ai/stream/chat", json=CHAT, headers=origin) as response:
        exposed = response.headers["Access-Control-Expose-Headers"]
    for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"):
        assert name in exposed


async def test_the_chat_command_says_when_its_url_has_no_scheme(monkeypatch):
    monkeypatch.setenv("AI_GATEWAY_URL", "localhost:8080")
    err = io.StringIO()
    assert await chat("hi", None, None, 10, out=io.StringIO(), err=err) == 2
    assert "no scheme: write http://localhost:8080" in err.getvalue()


def test_the_usage_command_says_when_its_url_has_no_scheme(capsys):
    assert main(["usage", "--url", "localhost:8080"]) == 2
    assert "no scheme" in capsys.readouterr().err


def test_check_config_says_demo_mode_auth_and_where_it_listens(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert main(["check-config", str(REPO / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "demo mode (no provider has credentials)" in out
    assert "auth none" in out and "listening on 127.0.0.1:8080" in out


async def test_a_stream_token_says_when_it_expires_in_whole_seconds(
    gateway, redis_server, key_prefix
):
    client = await gateway(**tenancy(redis_server.url, key_prefix))
    async with client.post("/ai/stream/token", headers=bearer(KEY_A)) as response:
        assert (await response.json())["expires_in"] == 300


def test_the_packaged_default_config_is_the_shipped_one():
    packaged = REPO / "gateway" / "default_config.yaml"
    assert packaged.read_bytes() == (REPO / "config.yaml").read_bytes()


def test_check_config_anywhere_falls_back_to_the_packaged_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no config.yaml here
    monkeypatch.delenv("AI_GATEWAY_CONFIG", raising=False)
    assert main(["check-config"]) == 0
    captured = capsys.readouterr()
    assert "using the packaged default" in captured.err
    assert captured.out.startswith("config OK")
