"""The demo page's controls in headless Chromium: the demo-mode banner, the model line
under each answer (with a fallback's models), the model picker filled from
`GET /ai/stream/models`, Enter and Shift+Enter, the favicon, and a key left empty."""

from __future__ import annotations

from typing import Any

from gateway.cli import hash_api_key
from tests.browser.conftest import demo, screenshot
from tests.conftest import post_stream
from tests.fakes.anthropic_server import Script

SONNET, HAIKU = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"
KEY_ALL, KEY_SOME = "browser-key-every-model-01", "browser-key-some-models-02"
DONE = "document.querySelector('[data-testid=status]').textContent.startsWith('Done')"


def tenants() -> dict[str, Any]:
    """One tenant that may use every name, one restricted to `fast` and `haiku`."""
    return {
        "auth": {"mode": "api_key"},
        "chains": {
            "default": {"targets": ["sonnet"]},
            "fast": {"targets": ["haiku"]},
        },
        "tenants": [
            {"id": "all", "keys": [hash_api_key(KEY_ALL)]},
            {
                "id": "some",
                "keys": [hash_api_key(KEY_SOME)],
                "chains": ["haiku", "fast"],
                "default_chain": "fast",
            },
        ],
    }


async def open_page(browser, client):
    page = await browser.new_page()
    await page.goto(str(client.make_url("/")))
    return page


async def picker(page) -> list[dict[str, Any]]:
    return await page.eval_on_selector_all(
        "[data-testid=model] option",
        "options => options.map(o => ({value: o.value, label: o.textContent, "
        "selected: o.selected}))",
    )


async def test_demo_mode_shows_a_banner_saying_how_to_get_real_answers(gateway, browser):
    page = await open_page(browser, await gateway(**demo(words=20, delay_ms=0)))
    banner = page.locator("[data-testid=banner]")
    await banner.wait_for(state="visible")
    text = await banner.text_content() or ""
    assert "Demo mode" in text
    assert "export ANTHROPIC_API_KEY" in text
    assert "restart" in text
    assert "README" in text


async def test_live_mode_shows_no_banner(gateway, browser):
    page = await open_page(browser, await gateway())
    await page.wait_for_function("!document.querySelector('[data-testid=model]').disabled")
    assert not await page.is_visible("[data-testid=banner]")


async def test_answer_after_a_fallback_names_its_model_and_the_models_tried(
    gateway, fake_anthropic, browser
):
    fake_anthropic.script(
        Script(chunks=["The quick", " brown", " fox"], fault="drop", fault_after=2),
        Script(chunks=[" jumps", " over."]),
    )
    client = await gateway(
        chains={
            "default": {
                "targets": ["sonnet", "haiku"],
                "retry": {"max_attempts": 1},
                "on_stream_failure": "continue",
            }
        }
    )
    page = await open_page(browser, client)
    await page.fill("[data-testid=prompt]", "Tell me about foxes")
    await page.click("[data-testid=send]")
    await page.wait_for_function(DONE)

    meta = await page.text_content("[data-testid=answer-meta]")
    assert meta == (f"Model: {HAIKU} · tried: {SONNET} → {HAIKU} · text from: {SONNET} + {HAIKU}")
    await screenshot(page, "demo-page-fallback")


async def test_picker_lists_only_the_names_a_restricted_key_may_use(
    gateway, fake_anthropic, browser
):
    page = await open_page(browser, await gateway(**tenants()))
    await page.fill("[data-testid=key]", KEY_SOME)
    await page.press("[data-testid=key]", "Tab")  # the key field's change reloads the picker
    await page.wait_for_function("!document.querySelector('[data-testid=model]').disabled")
    assert await picker(page) == [
        {"value": "fast", "label": "fast (default)", "selected": True},
        {"value": "haiku", "label": "haiku", "selected": False},
    ]

    sent: list[dict[str, Any]] = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.method == "POST" else None)
    await page.select_option("[data-testid=model]", "haiku")
    await page.fill("[data-testid=prompt]", "hello")
    await page.click("[data-testid=send]")
    await page.wait_for_function(DONE)
    assert sent[-1]["model"] == "haiku"
    assert fake_anthropic.seen[-1].body["model"] == HAIKU
    await screenshot(page, "demo-page-picker")


async def test_picker_lists_every_name_for_an_unrestricted_key(gateway, browser):
    page = await open_page(browser, await gateway(**tenants()))
    await page.fill("[data-testid=key]", KEY_ALL)
    await page.press("[data-testid=key]", "Tab")
    await page.wait_for_function("!document.querySelector('[data-testid=model]').disabled")
    options = await picker(page)
    assert [o["value"] for o in options] == sorted(
        ["default", "fast", "sonnet", "haiku", SONNET, HAIKU]
    )
    assert [o["label"] for o in options if o["selected"]] == ["default"]


async def test_enter_sends_and_shift_enter_adds_a_line(gateway, browser):
    page = await open_page(browser, await gateway(**demo(words=20, delay_ms=0)))
    prompt = page.locator("[data-testid=prompt]")
    await prompt.click()
    await page.keyboard.type("first line")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("second line")
    assert await prompt.input_value() == "first line\nsecond line"
    assert await page.locator("[data-testid=user]").count() == 0

    await page.keyboard.press("Enter")
    await page.wait_for_function(DONE)
    assert await page.text_content("[data-testid=user]") == "first line\nsecond line"
    assert await prompt.input_value() == ""


async def test_page_has_a_favicon_the_browser_can_draw(gateway, browser):
    page = await open_page(browser, await gateway(**demo(words=20, delay_ms=0)))
    width = await page.evaluate(
        """() => new Promise((resolve) => {
          const image = new Image();
          image.onload = () => resolve(image.naturalWidth);
          image.onerror = () => resolve(0);
          image.src = document.querySelector("link[rel=icon]").href;
        })"""
    )
    assert width > 0


async def test_an_empty_key_shows_the_gateways_own_401_message(gateway, browser):
    client = await gateway(**tenants())
    page = await open_page(browser, client)
    headers: list[dict[str, str]] = []
    page.on("request", lambda r: headers.append(r.headers) if r.method == "POST" else None)
    await page.fill("[data-testid=prompt]", "hello")
    await page.click("[data-testid=send]")
    await page.wait_for_function(
        "document.querySelector('[data-testid=status]').textContent.startsWith('Error')"
    )

    refused = await post_stream(
        client,
        "/ai/stream/chat",
        {"messages": [{"role": "user", "content": "hello"}]},
        headers={"X-Gateway-Client": "demo-page"},
    )
    assert refused.status == 401
    assert headers[-1]["x-gateway-client"] == "demo-page"
    assert await page.text_content(".assistant") == "Error: " + refused.last["error"]
    assert await page.text_content("[data-testid=status]") == "Error (unauthorized)"
    await screenshot(page, "demo-page-no-key")
    # the picker, refused the same way, says so too
    note = await page.text_content("[data-testid=models-note]")
    async with client.get("/ai/stream/models", headers={"X-Gateway-Client": "demo-page"}) as r:
        assert note == (await r.json())["error"]
