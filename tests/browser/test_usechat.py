"""The AI SDK's `useChat` (React, `examples/web/usechat/`) in a real headless Chromium,
streaming from the gateway's `?format=ui` endpoint (demo provider) on loopback.

The page is bundled with esbuild from examples/web/node_modules into a temporary
directory, and served by the gateway app under test on an extra static route, so the
page and `/ai/stream/chat` share an origin, as behind one reverse proxy.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.cli import hash_api_key
from tests.browser.conftest import demo, screenshot
from tests.conftest import build_config

WEB = Path(__file__).resolve().parents[2] / "examples" / "web"
QUESTION = "Tell me about streaming"

# The assistant's text lengths, recorded at every change of the page: a page that shows
# the answer only at its end records one length.
RECORD_LENGTHS = """() => {
  window.lengths = [];
  new MutationObserver(() => {
    const answers = document.querySelectorAll("[data-role=assistant] [data-testid=message-text]");
    const last = answers[answers.length - 1];
    if (last) window.lengths.push(last.textContent.length);
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
}"""
ANSWERED = """(count) =>
  document.querySelectorAll("[data-role=assistant] [data-testid=message-model]").length === count
  && document.querySelector("[data-testid=status]").textContent === "ready"
"""


@pytest.fixture
async def usechat_page(tmp_path: Path) -> Path:
    """examples/web/usechat bundled for the browser: a directory with index.html and
    usechat.js (esbuild from node_modules; nothing is fetched)."""
    esbuild = WEB / "node_modules/.bin/esbuild"
    if not esbuild.exists():
        pytest.fail("examples/web has no node_modules: run the README's test command")
    process = await asyncio.create_subprocess_exec(
        str(esbuild),
        "usechat/main.tsx",
        "--bundle",
        "--format=esm",
        '--define:process.env.NODE_ENV="production"',
        f"--outfile={tmp_path / 'usechat.js'}",
        "--log-level=warning",
        cwd=WEB,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, (out + err).decode()
    shutil.copy(WEB / "usechat/index.html", tmp_path / "index.html")
    return tmp_path


async def gateway_serving(aiohttp_client: Any, page: Path, **config: Any) -> TestClient[Any, Any]:
    """A gateway (demo provider) that also serves `page` under /usechat/."""
    app = create_app(build_config(**config))
    app.router.add_static("/usechat/", page)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


async def test_use_chat_streams_answers_from_the_gateway_into_the_page(
    aiohttp_client, browser, usechat_page
):
    client = await gateway_serving(aiohttp_client, usechat_page, **demo(words=40, delay_ms=30))
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(str(client.make_url("/usechat/index.html")))
    await page.wait_for_selector("[data-testid=prompt]")
    await page.evaluate(RECORD_LENGTHS)

    await page.fill("[data-testid=prompt]", QUESTION)
    await page.click("[data-testid=send]")
    await page.wait_for_function(ANSWERED, arg=1)

    roles = await page.eval_on_selector_all(
        "[data-testid=message]", "nodes => nodes.map(n => n.dataset.role)"
    )
    assert roles == ["user", "assistant"]
    texts = await page.eval_on_selector_all(
        "[data-testid=message-text]", "nodes => nodes.map(n => n.textContent)"
    )
    assert texts[0] == QUESTION
    assert texts[1].startswith("This is the offline demo provider")
    assert f'You asked: "{QUESTION}".' in texts[1]  # the gateway read useChat's body
    assert texts[1].endswith(".") and len(texts[1].split()) <= 40
    model = await page.text_content("[data-role=assistant] [data-testid=message-model]")
    assert model == "Model: demo"  # from the finish chunk's messageMetadata
    lengths = [n for n in await page.evaluate("window.lengths") if n > 0]
    assert len(set(lengths)) >= 5, lengths  # it grew in steps, not all at once
    assert lengths == sorted(lengths)
    await screenshot(page, "usechat-page")

    # a second turn sends the whole conversation, the answer's parts included
    await page.fill("[data-testid=prompt]", "And resumable streams?")
    await page.click("[data-testid=send]")
    await page.wait_for_function(ANSWERED, arg=2)
    last = await page.text_content("[data-role=assistant]:last-child [data-testid=message-text]")
    assert 'You asked: "And resumable streams?".' in (last or "")
    assert errors == []
    assert not await page.is_visible("[data-testid=error]")


async def test_use_chat_shows_the_gateways_error(aiohttp_client, browser, usechat_page):
    client = await gateway_serving(
        aiohttp_client,
        usechat_page,
        **demo(words=10, delay_ms=0),
        auth={"mode": "api_key"},
        tenants=[{"id": "web", "keys": [hash_api_key("browser-key-0001")]}],
    )
    page = await browser.new_page()
    await page.goto(str(client.make_url("/usechat/index.html")))
    await page.fill("[data-testid=prompt]", QUESTION)
    await page.click("[data-testid=send]")
    await page.wait_for_selector("[data-testid=error]")

    assert await page.text_content("[data-testid=status]") == "error"
    shown = await page.text_content("[data-testid=error]") or ""
    assert shown.startswith("Missing API key"), shown  # the error chunk's errorText
    await screenshot(page, "usechat-page-error")
