"""The admin dashboard (`/admin`) in a real headless Chromium (Debian's), driven by
Playwright, against a gateway on loopback in front of the fake Anthropic: real requests
over ten (fake-clock) days, a circuit opened by a failing target and a stream held open;
then the page, given the admin key, draws them.

Waits on the page are functions (`"() => ..."`): the page's Content-Security-Policy allows
no eval, which is how Playwright runs a bare expression string."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.config import ModelConfig
from tests.browser.conftest import screenshot
from tests.clock import FakeClock
from tests.conftest import CHAT, post_stream
from tests.fakes.script import Script
from tests.gateway.test_admin_dashboard import (
    ADMIN,
    DAY_S,
    HAIKU,
    KEY_A,
    KEY_B,
    SONNET,
    auth,
    dashboard_config,
    start_dashboard,
)
from tests.waiting import wait_until

# Requests per day, oldest first, for the two tenants; the last day is the clock's today.
WEB_APP = [3, 4, 2, 5, 6, 4, 7, 5, 8, 6]
BATCH = [1, 0, 2, 1, 3, 2, 2, 4, 3, 4]
WEB_APP_INPUT, BATCH_INPUT = 1_200, 9_000  # tokens per request, as the fake reports them
# Model prices make the cost chart draw; a gateway without them reports every cost as 0.
PRICED = "price" in ModelConfig.model_fields
PRICES = {
    "sonnet": {"price": {"input": 3, "output": 15}},
    "haiku": {"price": {"input": 1, "output": 5}},
}

CHAIN = {
    "targets": ["sonnet", "haiku"],
    "retry": {"max_attempts": 1},
    "circuit_breaker": {"failure_threshold": 1, "cooldown_s": 600},
}
LOADED = "(n) => Number(document.getElementById('dashboard').dataset.loads || 0) >= n"

# Pixels of each legend marker's colour in the chart's canvas: the bars that were drawn.
DRAWN_PIXELS = """(id) => {
  const chart = document.getElementById(id);
  const canvas = chart.querySelector("canvas");
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const drawn = {};
  for (const row of chart.querySelectorAll(".u-legend tr.u-series:not(:first-child)")) {
    const marker = row.querySelector(".u-marker");
    if (!marker) continue;
    const label = row.querySelector(".u-label").textContent;
    const [r, g, b] = getComputedStyle(marker).backgroundColor.match(/\\d+/g).map(Number);
    let count = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      if (pixels[i] === r && pixels[i + 1] === g && pixels[i + 2] === b) count++;
    }
    drawn[label] = count;
  }
  return drawn;
}"""
LEGEND = """(id) => Object.fromEntries([...document.querySelectorAll(
  "#" + id + " .u-legend tr.u-series")].map((row) => [
    row.querySelector(".u-label").textContent, row.querySelector(".u-value").textContent]))"""


@pytest.fixture
def dashboard(aiohttp_client, fake_anthropic):
    return start_dashboard(aiohttp_client, fake_anthropic)


def watch_console(page: Any) -> list[str]:
    """Errors the page logs (a script error, a CSP violation), to assert there are none."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


async def sign_in(page: Any, client: Any, key: str) -> None:
    await page.goto(str(client.make_url("/admin")))
    await page.fill("[data-testid=admin-key]", key)
    await page.click("[data-testid=connect]")


async def test_dashboard_charts_real_usage_circuits_and_open_streams(
    dashboard, fake_anthropic, browser
):
    clock = FakeClock()  # 2027-01-15; the ten days end on 2027-01-24
    overrides: dict[str, Any] = {"chains": {"default": CHAIN}}
    if PRICED:
        overrides["models"] = PRICES
    client = await dashboard(clock.clock, **dashboard_config(**overrides))
    for day, (web_app, batch) in enumerate(zip(WEB_APP, BATCH, strict=True)):
        if day:
            clock.advance(DAY_S)
        for key, count, tokens in ((KEY_A, web_app, WEB_APP_INPUT), (KEY_B, batch, BATCH_INPUT)):
            for _ in range(count):
                fake_anthropic.script(Script(input_tokens=tokens, chunks=["Hi"] * 40))
                assert (
                    await post_stream(client, "/ai/stream/chat", CHAT, headers=auth(key))
                ).status == 200
    # Today sonnet fails once (its circuit opens), and one more answer is held open.
    held = asyncio.Event()
    fake_anthropic.script(Script(status=500), Script(input_tokens=WEB_APP_INPUT), Script(hold=held))
    assert (await post_stream(client, "/ai/stream/chat", CHAT, headers=auth(KEY_A))).last[
        "model"
    ] == HAIKU
    streaming = asyncio.create_task(
        post_stream(client, "/ai/stream/chat", CHAT, headers=auth(KEY_B))
    )

    async def one_open() -> bool:
        async with client.get("/admin/status", headers=auth(ADMIN)) as response:
            return (await response.json())["open_streams"] == 1

    await wait_until(one_open, "the held stream to be open")

    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    errors = watch_console(page)
    await sign_in(page, client, ADMIN)
    await page.wait_for_function(LOADED, arg=1)

    assert await page.text_content("[data-testid=open-streams]") == "1"
    circuits = await page.eval_on_selector_all(
        "[data-testid=circuits] tbody tr",
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))",
    )
    assert circuits == [
        [f"anthropic/{SONNET}", "Open · cooling down", "0", "1"],
        [f"anthropic/{HAIKU}", "Closed", "0", "0"],
    ]
    assert await page.text_content("[data-testid=circuits-summary]") == "1 open"
    assert await page.text_content("[data-testid=limiter-backend]") == "In-process"
    assert "No Redis" in (await page.text_content("[data-testid=limiter-redis]") or "")

    web_requests, batch_requests = sum(WEB_APP) + 1, sum(BATCH)  # + today's fallback
    tenants = await page.eval_on_selector_all(
        "[data-testid=tenants] tbody tr",
        "rows => rows.map(r => [r.dataset.tenant, r.cells[1].textContent])",
    )
    assert tenants == [
        ["web-app", str(web_requests)],
        ["batch", str(batch_requests)],
        ["anonymous", "0"],  # no usage: listed, not charted
    ]
    assert await page.text_content("[data-tenant=web-app] .tenant-name") == "Marketing site"

    assert await page.evaluate(LEGEND, "chart-requests") == {
        "Day": "14-day total",
        "batch": str(batch_requests),
        "web-app": str(web_requests),
    }
    charts = ["chart-requests", "chart-tokens"] + (["chart-cost"] if PRICED else [])
    for chart in charts:
        drawn = await page.evaluate(DRAWN_PIXELS, chart)
        assert set(drawn) == {"web-app", "batch"}, chart
        assert all(count > 200 for count in drawn.values()), (chart, drawn)
    if PRICED:
        cost = await page.text_content("[data-tenant=batch] td:last-child")
        assert cost is not None and cost.startswith("$") and cost != "$0.00"

    assert ADMIN not in await page.content()
    assert await page.evaluate("sessionStorage.getItem('aigw-admin-key')") == ADMIN
    assert await page.evaluate("localStorage.length") == 0
    await screenshot(page, "admin-dashboard")
    assert errors == []

    held.set()
    assert (await streaming).status == 200
    await page.click("[data-testid=refresh]")
    await page.wait_for_function(
        "() => document.querySelector('[data-testid=open-streams]').textContent === '0'"
    )
    await page.select_option("[data-testid=range]", "7")
    await page.wait_for_function(
        "() => document.getElementById('range-label').textContent.includes('7 days')"
    )
    legend = await page.evaluate(LEGEND, "chart-requests")
    assert legend["web-app"] == str(sum(WEB_APP[-7:]) + 1)
    assert legend["Day"] == "7-day total"

    await page.click("[data-testid=forget]")
    assert await page.is_visible("[data-testid=signin]")
    assert await page.evaluate("sessionStorage.getItem('aigw-admin-key')") is None


async def test_a_wrong_key_is_refused_and_not_kept(dashboard, browser):
    client = await dashboard(**dashboard_config())
    page = await browser.new_page()
    await sign_in(page, client, "not-the-admin-key")
    await page.wait_for_function(
        "() => document.querySelector('[data-testid=signin-error]').textContent !== ''"
    )
    assert "refused" in (await page.text_content("[data-testid=signin-error]") or "")
    assert await page.is_hidden("[data-testid=dashboard]")
    await screenshot(page, "admin-dashboard-signin")
    assert await page.evaluate("sessionStorage.getItem('aigw-admin-key')") is None


async def test_tenant_names_are_shown_as_text_never_as_markup(dashboard, browser):
    name = '<img src=x onerror="window.pwned=1"><b>bold</b>'
    config = dashboard_config()
    config["tenants"][0]["name"] = name
    client = await dashboard(**config)
    await post_stream(client, "/ai/stream/chat", CHAT, headers=auth(KEY_A))
    page = await browser.new_page()
    errors = watch_console(page)
    await sign_in(page, client, ADMIN)
    await page.wait_for_function(LOADED, arg=1)
    assert await page.text_content("[data-tenant=web-app] .tenant-name") == name
    assert (
        await page.eval_on_selector_all("[data-testid=dashboard] img, main b", "n => n.length") == 0
    )
    assert await page.evaluate("window.pwned") is None
    assert errors == []
