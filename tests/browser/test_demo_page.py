"""The demo page and EventSource in a real headless Chromium (Debian's), driven by
Playwright, against a gateway on loopback serving the demo provider."""

from __future__ import annotations

import asyncio
import re

from gateway.cli import hash_api_key
from tests.browser.conftest import demo, screenshot

KEY = "browser-tenant-key-000001"


async def test_demo_page_streams_text_in_steps_and_shows_the_model(gateway, browser):
    client = await gateway(**demo(words=40, delay_ms=40))
    page = await browser.new_page()
    await page.goto(str(client.make_url("/")))
    await page.fill("[data-testid=prompt]", "Tell me about streaming")
    await page.click("[data-testid=send]")

    lengths = []
    for _ in range(200):
        text = await page.text_content(".assistant") or ""
        if not lengths or len(text) != lengths[-1]:
            lengths.append(len(text))
        if (await page.text_content("[data-testid=status]") or "").startswith("Done"):
            break
        await asyncio.sleep(0.02)
    status = await page.text_content("[data-testid=status]")
    assert re.fullmatch(r"Done · \d+ tokens in \d+\.\d s", status or ""), status
    assert len([n for n in lengths if n > 0]) >= 5  # it grew in steps, not all at once
    assert lengths == sorted(lengths)
    final = await page.text_content(".assistant")
    assert final.startswith("This is the offline demo provider")
    assert final.endswith(".") and len(final.split()) <= 40  # a whole sentence, within words
    assert await page.text_content("[data-testid=answer-meta]") == "Model: demo"
    assert await page.is_visible("[data-testid=banner]")
    await screenshot(page, "demo-page")


async def test_stop_button_aborts_the_stream_and_the_gateway_sees_it(gateway, browser):
    client = await gateway(**demo(words=400, delay_ms=30))
    page = await browser.new_page()
    await page.goto(str(client.make_url("/")))
    await page.fill("[data-testid=prompt]", "A long answer please")
    await page.click("[data-testid=send]")
    await page.wait_for_function("document.querySelector('.assistant')?.textContent.length > 40")
    await page.click("[data-testid=stop]")
    await page.wait_for_function(
        "document.querySelector('[data-testid=status]').textContent === 'Stopped.'"
    )
    shown = len(await page.text_content(".assistant") or "")

    for _ in range(100):
        async with client.get("/metrics") as response:
            metrics = await response.text()
        if 'outcome="client_disconnected"' in metrics:
            break
        await asyncio.sleep(0.05)
    assert (
        'outcome="client_disconnected",route="/ai/stream/chat",tenant="anonymous"} 1.0' in metrics
    )
    assert "aigw_open_streams 0.0" in metrics
    await asyncio.sleep(0.3)
    assert len(await page.text_content(".assistant") or "") == shown  # nothing more arrived


async def test_event_source_streams_with_ids_using_a_stream_token(gateway, browser):
    client = await gateway(
        **demo(words=12, delay_ms=10),
        auth={"mode": "api_key"},
        tenants=[{"id": "web", "keys": [hash_api_key(KEY)]}],
    )
    page = await browser.new_page()
    await page.goto(str(client.make_url("/")))
    result = await page.evaluate(
        """async (key) => {
          const r = await fetch("/ai/stream/token", {
            method: "POST", headers: { Authorization: "Bearer " + key } });
          const { token } = await r.json();
          return await new Promise((resolve, reject) => {
            const url = "/ai/stream/generate?prompt=" + encodeURIComponent("hello there") +
              "&max_tokens=12&token=" + encodeURIComponent(token);
            const source = new EventSource(url);
            const events = [];
            source.onmessage = (e) => {
              const data = JSON.parse(e.data);
              events.push({ id: e.lastEventId, data });
              if (data.type === "done" || data.type === "error") {
                source.close();
                resolve(events);
              }
            };
            source.onerror = () => { source.close(); reject(new Error("EventSource failed")); };
          });
        }""",
        KEY,
    )
    kinds = [e["data"]["type"] for e in result]
    assert kinds == ["content"] * 12 + ["done"]
    assert [e["id"] for e in result] == [str(i) for i in range(1, 14)]
    assert result[-1]["data"]["model"] == "demo"

    # without a token, or with a forged one, the stream is refused
    async with client.get("/ai/stream/generate?prompt=x") as response:
        assert response.status == 401
    async with client.get("/ai/stream/generate?prompt=x&token=abc.def") as response:
        assert response.status == 401
