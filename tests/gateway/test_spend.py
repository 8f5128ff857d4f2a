"""Spend in USD: what each answer cost (done, access log, usage report, metrics), and
USD budgets that stop a tenant exactly, across two replicas sharing Redis."""

from __future__ import annotations

import logging

import pytest

from gateway.config import ConfigError
from tests.conftest import CHAT, build_config, post_stream
from tests.fakes.script import Script
from tests.gateway.test_operations import access_records
from tests.gateway.test_tenancy import KEY_A, bearer, tenancy

SONNET, HAIKU = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"
# Dear on purpose, so that a few requests reach a budget: 1,000 USD per million tokens is
# 1,000 micro-dollars a token.
DEAR = {"input": 1000.0, "output": 1000.0, "cache_write": 2000.0, "cache_read": 100.0}
ASK = {**CHAT, "max_tokens": 10}  # reserves 4 input (16 characters) + 10 output tokens


def priced(**price: float) -> dict:
    return {
        "sonnet": {"provider": "anthropic", "model": SONNET, "allow_retired": True, "price": price}
    }


async def test_done_the_access_log_and_the_usage_report_carry_the_cost(
    gateway, fake_anthropic, caplog, redis_server, key_prefix
):
    caplog.set_level(logging.INFO, logger="gateway.access")
    setup = tenancy(redis_server.url, key_prefix)
    setup["admin"] = {"api_key": "${ADMIN_KEY}"}
    client = await gateway(
        **setup,
        env={"ADMIN_KEY": "admin-key-0123456789"},
        models=priced(input=2.0, output=10.0, cache_write=2.5, cache_read=0.2),
    )
    fake_anthropic.script(Script(input_tokens=11, cache_write_tokens=1000, cache_read_tokens=5000))
    result = await post_stream(client, "/ai/stream/chat", CHAT, headers=bearer(KEY_A))

    # 11 x 2 + 4 x 10 + 1,000 x 2.5 + 5,000 x 0.2 micro-dollars
    expected = (11 * 2 + 4 * 10 + 1000 * 2.5 + 5000 * 0.2) / 1e6
    usage = result.last["usage"]
    assert usage["cost_usd"] == pytest.approx(expected)
    assert (usage["cache_creation_input_tokens"], usage["cache_read_input_tokens"]) == (1000, 5000)
    (line,) = [r for r in await access_records(caplog, 1) if r.get("tenant") == "a"]
    assert line["cost_usd"] == pytest.approx(expected)

    report = await client.get("/admin/usage?tenant=a", headers=bearer("admin-key-0123456789"))
    tenant = (await report.json())["tenants"]["a"]
    assert tenant["cost_usd"] == pytest.approx(expected)
    assert tenant["models"][SONNET]["cost_usd"] == pytest.approx(expected)
    metrics = await (await client.get("/metrics", headers=bearer("admin-key-0123456789"))).text()
    assert f'aigw_spend_usd_total{{model="{SONNET}",tenant="a"}}' in metrics


async def test_a_model_without_a_price_has_no_cost(gateway):
    client = await gateway()
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert "cost_usd" not in result.last["usage"]


@pytest.mark.parametrize("budget", ["daily_usd", "monthly_usd"])
async def test_a_usd_budget_stops_the_tenant_exactly_across_two_replicas(
    gateway, fake_anthropic, redis_server, key_prefix, budget
):
    """Each answer costs 15 tokens (11 in, 4 out): 0.015 USD; each admission reserves the
    worst case, 14 tokens: 0.014 USD.  Under 0.1 USD, six fit (6 x 0.015 = 0.09, and the
    seventh would need 0.104), whichever replica takes them."""
    setup = tenancy(redis_server.url, key_prefix, limits_a={budget: 0.1})
    one = await gateway(**setup, models=priced(**DEAR))
    two = await gateway(**setup, models=priced(**DEAR))
    statuses = []
    for n in range(8):
        replica = (one, two)[n % 2]
        result = await post_stream(replica, "/ai/stream/chat", ASK, headers=bearer(KEY_A))
        statuses.append(result.status)
    assert statuses == [200] * 6 + [429] * 2
    assert result.events[0]["code"] == "rate_limited"
    assert f"Spend budget exceeded: {budget} (0.1 USD). It resets at" in result.events[0]["error"]
    assert int(result.headers["Retry-After"]) >= 1


async def test_a_usd_budget_on_the_in_process_limiter(gateway, fake_anthropic):
    client = await gateway(
        auth={"mode": "none", "anonymous_limits": {"daily_usd": 0.1}}, models=priced(**DEAR)
    )
    statuses = [(await post_stream(client, "/ai/stream/chat", ASK)).status for _ in range(7)]
    assert statuses == [200] * 6 + [429]


def test_a_budget_over_a_model_without_a_price_is_refused_at_start_up():
    with pytest.raises(ConfigError) as refused:
        build_config(auth={"mode": "none", "anonymous_limits": {"monthly_usd": 50}})
    assert (
        "auth.anonymous_limits: has a USD budget, but its chain 'default' uses model 'sonnet', "
        "which has no price (set models.sonnet.price)" in str(refused.value)
    )


async def test_each_attempt_is_priced_at_its_own_model(gateway, fake_anthropic):
    """A continuation crosses models: what the first streamed before it failed is priced
    at its own price, not at the price of the model that finished."""
    models = {
        "dear": {"provider": "anthropic", "model": SONNET, "allow_retired": True},
        "free": {"provider": "anthropic", "model": "claude-haiku-4-5-20251001"},
    }
    models["dear"]["price"] = {"input": 1000.0, "output": 1000.0}
    models["free"]["price"] = {"input": 0.0, "output": 0.0}
    chain = {"targets": ["dear", "free"], "on_stream_failure": "continue"}
    fake_anthropic.script(
        Script(chunks=["The ", "quick ", "fox"], fault="drop", fault_after=2),
        Script(chunks=["brown ", "fox."]),
    )
    client = await gateway(models=models, chains={"default": chain})
    result = await post_stream(client, "/ai/stream/chat", CHAT)
    assert result.last["type"] == "done" and result.last["models_used"] == [SONNET, HAIKU]
    # The dear model's 11 input tokens and its streamed text, at 1,000 USD a million.
    assert result.last["usage"]["cost_usd"] >= 11 * 1000 / 1e6
