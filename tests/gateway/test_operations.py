"""Metrics, access log, usage report, health and probes, in one app over real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging

import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.cli import hash_api_key
from gateway.state import STATE
from tests.conftest import CHAT, build_config, post_stream
from tests.fakes.script import Script

ADMIN = "admin-key-for-tests-0001"
KEY_A, KEY_B = "tenant-a-key-000000001", "tenant-b-key-000000002"
FAST = {"max_attempts": 2, "initial_backoff_ms": 5, "max_backoff_ms": 10}


def ops_config(**extra):
    return {
        "env": {"ADMIN_KEY": ADMIN},
        "admin": {"api_key": "${ADMIN_KEY}"},
        "auth": {"mode": "api_key"},
        "tenants": [
            {"id": "a", "keys": [hash_api_key(KEY_A)], "limits": {"requests_per_minute": 3}},
            {"id": "b", "keys": [hash_api_key(KEY_B)], "log_content": True},
        ],
        "chains": {"default": {"targets": ["sonnet", "haiku"], "retry": FAST}},
        **extra,
    }


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def access_records(caplog, count):
    for _ in range(100):
        records = [r.fields for r in caplog.records if r.name == "gateway.access"]
        if len(records) >= count:
            return records
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {count} access log lines")


async def test_metrics_after_a_scripted_run_show_the_right_counts(gateway, fake_anthropic):
    fake_anthropic.script(Script(), Script(status=529), Script(status=529), Script())
    client = await gateway(**ops_config())
    ok = await post_stream(client, "/ai/stream/chat", CHAT, headers=auth(KEY_A))
    fell_over = await post_stream(client, "/ai/stream/chat", CHAT, headers=auth(KEY_A))
    await post_stream(client, "/ai/stream/chat", CHAT, headers=auth(KEY_A))
    limited = await post_stream(client, "/ai/stream/chat", CHAT, headers=auth(KEY_A))
    unauthorized = await post_stream(client, "/ai/stream/chat", CHAT)
    assert (ok.status, fell_over.last["model"], limited.status, unauthorized.status) == (
        200,
        "claude-haiku-4-5-20251001",
        429,
        401,
    )
    await asyncio.sleep(0.05)

    async with client.get("/metrics", headers=auth(ADMIN)) as response:
        assert response.status == 200
        found = samples(await response.text())
    sonnet, haiku = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"
    route = "/ai/stream/chat"
    assert (
        value(found, "aigw_requests_total", tenant="a", route=route, model=sonnet, outcome="ok")
        == 2
    )
    assert (
        value(found, "aigw_requests_total", tenant="a", route=route, model=haiku, outcome="ok") == 1
    )
    assert (
        value(
            found, "aigw_requests_total", tenant="a", route=route, model="none", outcome="rejected"
        )
        == 1
    )
    assert (
        value(
            found, "aigw_requests_total", tenant="-", route=route, model="none", outcome="rejected"
        )
        == 1
    )
    assert value(found, "aigw_rate_limited_total", tenant="a", limit="requests_per_minute") == 1
    assert value(found, "aigw_retries_total") == 1
    assert value(found, "aigw_fallbacks_total") == 1
    assert value(found, "aigw_tokens_total", tenant="a", model=sonnet, direction="input") == 22
    assert value(found, "aigw_tokens_total", tenant="a", model=haiku, direction="output") == 4
    assert value(found, "aigw_time_to_first_token_seconds_count", route=route) == 3
    assert value(found, "aigw_stream_duration_seconds_count", route=route) == 3
    assert value(found, "aigw_overhead_seconds_count") == 3
    assert value(found, "aigw_open_streams") == 0


async def test_metrics_on_the_main_port_need_the_admin_key(gateway):
    client = await gateway(**ops_config())
    async with client.get("/metrics") as response:
        assert response.status == 401
    async with client.get("/metrics", headers=auth("wrong")) as response:
        assert response.status == 401


async def test_one_json_access_line_per_request_and_content_only_when_opted_in(gateway, caplog):
    caplog.set_level(logging.INFO)
    client = await gateway(**ops_config())
    a = await post_stream(client, "/ai/stream/chat", CHAT, headers=auth(KEY_A))
    b = await post_stream(
        client, "/ai/stream/chat", CHAT, headers={**auth(KEY_B), "X-Request-ID": "req-b-1"}
    )
    line_a, line_b = await access_records(caplog, 2)
    assert line_a["request_id"] == a.headers["X-Request-ID"] == a.last["request_id"]
    assert line_b["request_id"] == "req-b-1"
    assert (line_a["tenant"], line_a["outcome"], line_a["status"]) == ("a", "ok", 200)
    assert line_a["targets_tried"] == ["claude-sonnet-4-5-20250929"]
    assert (line_a["input_tokens"], line_a["output_tokens"]) == (11, 4)
    assert line_a["ttft_ms"] > 0 and line_a["duration_ms"] >= line_a["ttft_ms"]
    assert "prompt" not in line_a and "completion" not in line_a
    assert line_b["prompt"] == "What is FastAPI?"
    assert line_b["completion"] == b.text


async def test_hanging_up_right_after_done_still_logs_and_settles_the_stream(
    aiohttp_client, fake_anthropic, caplog
):
    """`serve` cancels a handler whose client left; the settle round trip after `done` is
    where a client that closes at once catches it."""
    caplog.set_level(logging.INFO)
    app = create_app(build_config(anthropic_url=fake_anthropic.url, **ops_config()))
    client = await aiohttp_client(app)  # test servers cancel handlers, as `serve` does
    limiter = app[STATE].current.shared.limiter
    backend = limiter.memory  # no Redis here: the in-process backend settles
    settle, settled = backend.release, asyncio.Event()

    async def slow_release(*args):
        await asyncio.sleep(0.3)  # a settle script that takes a while to come back
        await settle(*args)
        settled.set()

    backend.release = slow_release
    body = json.dumps(CHAT).encode()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /ai/stream/chat HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
        % (KEY_A.encode(), len(body), body)
    )
    received = b""
    while b'"type":"done"' not in received:
        received += await reader.read(65536)
    writer.close()  # at once, as a browser tab that is closed after the answer

    (line,) = await access_records(caplog, 1)
    assert (line["outcome"], line["status"]) == ("ok", 200)
    assert (line["input_tokens"], line["output_tokens"]) == (11, 4)
    await asyncio.wait_for(settled.wait(), 2)
    usage = await limiter.usage("a")
    assert usage.tokens == 15
    assert usage.models["claude-sonnet-4-5-20250929"].requests == 1


async def test_admin_usage_reports_tokens_by_tenant_and_model(gateway):
    client = await gateway(**ops_config())
    await post_stream(client, "/ai/stream/chat", CHAT, headers=auth(KEY_A))
    await post_stream(client, "/ai/stream/chat", {**CHAT, "model": "haiku"}, headers=auth(KEY_B))
    await asyncio.sleep(0.05)
    async with client.get("/admin/usage") as response:
        assert response.status == 401
    async with client.get("/admin/usage", headers=auth(ADMIN)) as response:
        report = await response.json()
    assert report["tenants"]["a"]["models"] == {
        "claude-sonnet-4-5-20250929": {"input_tokens": 11, "output_tokens": 4, "requests": 1}
    }
    assert report["tenants"]["b"]["tokens"] == 15
    async with client.get("/admin/usage?tenant=b&day=2020-01-01", headers=auth(ADMIN)) as response:
        old = await response.json()
    assert old == {
        "day": "2020-01-01",
        "tenants": {"b": {"tokens": 0, "requests": 0, "models": {}}},
    }
    async with client.get("/admin/usage?day=yesterday", headers=auth(ADMIN)) as response:
        assert response.status == 400


async def test_admin_api_is_off_without_an_admin_key(gateway):
    client = await gateway()
    async with client.get("/admin/usage") as response:
        assert response.status == 403
        assert "admin.api_key" in (await response.json())["error"]


async def test_health_keeps_the_guide_shape_and_adds_components(gateway):
    client = await gateway(**ops_config())
    async with client.get("/ai/stream/health") as response:
        health = await response.json()
    assert {"streaming_enabled", "model", "supports_streaming", "format"} <= set(health)
    assert health["providers"]["anthropic"] == {"credentials": True}
    assert health["limiter"] == {"backend": "memory", "redis": "not configured"}
    assert health["open_streams"] == 0
    assert health["draining"] is False


async def test_livez_and_readyz_when_redis_is_down_and_limits_fail_closed(
    gateway, own_redis_server, key_prefix
):
    redis = {"url": own_redis_server.url, "key_prefix": key_prefix, "on_error": "fail_closed"}
    client = await gateway(redis=redis)
    async with client.get("/livez") as response:
        assert response.status == 200
    async with client.get("/readyz") as response:
        assert response.status == 200
    own_redis_server.stop()
    async with client.get("/readyz") as response:
        assert response.status == 503
        assert (await response.json())["problems"] == ["redis not answering"]
    async with client.get("/livez") as response:
        assert response.status == 200


async def test_a_fail_open_replica_stays_ready_while_redis_is_down(
    gateway, own_redis_server, key_prefix
):
    client = await gateway(redis={"url": own_redis_server.url, "key_prefix": key_prefix})
    own_redis_server.stop()
    async with client.get("/readyz") as response:
        assert response.status == 200  # it serves, with in-process limits
        ready = await response.json()
    assert ready == {"ready": True, "problems": [], "degraded": ["redis not answering"]}
    async with client.post("/ai/stream/chat", json=CHAT) as response:
        assert response.status == 200


async def test_reload_keeps_circuit_state(gateway, fake_anthropic, tmp_path, monkeypatch):
    from gateway.app import reload
    from tests.conftest import BASE_CONFIG, merge
    from tests.fakes.anthropic_server import API_KEY

    overrides = {
        "chains": {
            "default": {
                "targets": ["sonnet", "haiku"],
                "retry": {"max_attempts": 1},
                "circuit_breaker": {"failure_threshold": 1, "cooldown_s": 60},
            }
        }
    }
    client = await gateway(**overrides)
    fake_anthropic.script(Script(status=500))
    await post_stream(client, "/ai/stream/chat", CHAT)  # sonnet fails once: its circuit opens
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.url)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(merge(BASE_CONFIG, overrides)))

    assert await reload(client.app, path)
    async with client.get("/ai/stream/health") as response:
        targets = (await response.json())["targets"]
    assert targets["anthropic/claude-sonnet-4-5-20250929"]["state"] == "open"
