"""The AI SDK's `useChat` (React, `examples/web/usechat/`) in a real headless Chromium,
streaming from the gateway's `?format=ui` endpoint (demo provider) on loopback; with
`resume.enabled`, a page reloaded mid-answer picks the answer up again (`resume: true`).

The page is bundled with esbuild from examples/web/node_modules into a temporary
directory, and served by the gateway app under test on an extra static route, so the
page and `/ai/stream/chat` share an origin, as behind one reverse proxy.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import ConsoleMessage, Response

from gateway.app import create_app
from gateway.cli import hash_api_key
from tests.browser.conftest import demo, screenshot
from tests.conftest import build_config

WEB = Path(__file__).resolve().parents[2] / "examples" / "web"
QUESTION = "Tell me about streaming"

# The assistant's text lengths, recorded at every change of the page: a page that shows
# the answer only at its end records one length.  (Also as an init script: it observes
# the document, there before the body.)
RECORD_LENGTHS = """() => {
  window.lengths = [];
  new MutationObserver(() => {
    const answers = document.querySelectorAll("[data-role=assistant] [data-testid=message-text]");
    const last = answers[answers.length - 1];
    if (last) window.lengths.push(last.textContent.length);
  }).observe(document, { subtree: true, childList: true, characterData: true });
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


RESUME = {"resume": {"enabled": True}}
LAST_ANSWER = "[data-role=assistant]:last-child [data-testid=message-text]"
SHOWN = """(words) =>
  (document.querySelector("[data-role=assistant] [data-testid=message-text]")?.textContent ?? "")
    .split(" ").length > words"""


# The useChat statuses the page shows, in order, from its first render.
RECORD_STATUSES = """(() => {
  window.statuses = [];
  new MutationObserver(() => {
    const shown = document.querySelector("[data-testid=status]")?.textContent;
    if (shown && window.statuses.at(-1) !== shown) window.statuses.push(shown);
  }).observe(document, { subtree: true, childList: true, characterData: true });
})()"""


def console_problem(message: ConsoleMessage) -> list[str]:
    """An error or warning in the console (the page has no favicon: its 404 is none)."""
    if message.type not in ("error", "warning"):
        return []
    return [] if message.location["url"].endswith("/favicon.ico") else [message.text]


def resumes(chat_id: str) -> Callable[[Response], bool]:
    """useChat's reconnect on load: `GET <api path>/<chat id>/stream<api query>`."""
    return lambda r: r.url.endswith(f"/ai/stream/chat/{chat_id}/stream?format=ui")


async def test_use_chat_reloaded_mid_answer_resumes_it_to_its_end(
    aiohttp_client, browser, usechat_page
):
    client = await gateway_serving(
        aiohttp_client, usechat_page, **demo(words=60, delay_ms=40), **RESUME
    )
    uncut_page = await browser.new_page()  # the same answer, never interrupted
    await uncut_page.goto(str(client.make_url("/usechat/index.html?chat=uncut")))
    await uncut_page.fill("[data-testid=prompt]", QUESTION)
    await uncut_page.click("[data-testid=send]")

    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.add_init_script(f"({RECORD_LENGTHS})()")
    await page.goto(str(client.make_url("/usechat/index.html?chat=reloaded")))
    await page.fill("[data-testid=prompt]", QUESTION)
    await page.click("[data-testid=send]")
    await page.wait_for_function(SHOWN, arg=5)
    before = await page.text_content(LAST_ANSWER) or ""
    async with page.expect_response(resumes("reloaded")) as resumed:
        await page.reload()  # the same URL: the same chat id
    assert (await resumed.value).status == 200
    await page.wait_for_function(ANSWERED, arg=1)
    await uncut_page.wait_for_function(ANSWERED, arg=1)
    uncut = await uncut_page.text_content(LAST_ANSWER) or ""

    assert await page.text_content(LAST_ANSWER) == uncut
    assert 0 < len(before) < len(uncut)  # the reload was mid-answer
    lengths = [n for n in await page.evaluate("window.lengths") if n > 0]
    assert len(set(lengths)) >= 5, lengths  # after the reload it still streamed, in steps
    assert lengths == sorted(lengths) and lengths[-1] == len(uncut)
    roles = await page.eval_on_selector_all(
        "[data-testid=message]", "nodes => nodes.map(n => n.dataset.role)"
    )
    assert roles == ["assistant"]  # (the page keeps no messages: the question is not shown)
    assert await page.text_content("[data-testid=message-model]") == "Model: demo"
    assert errors == []
    assert not await page.is_visible("[data-testid=error]")
    await screenshot(page, "usechat-page-resumed")


async def test_use_chat_on_a_chat_with_no_answer_running_shows_nothing(
    aiohttp_client, browser, usechat_page
):
    client = await gateway_serving(
        aiohttp_client, usechat_page, **demo(words=10, delay_ms=0), **RESUME
    )
    page = await browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.extend(console_problem(message)))
    await page.add_init_script(RECORD_STATUSES)
    async with page.expect_response(resumes("idle")) as resumed:
        await page.goto(str(client.make_url("/usechat/index.html?chat=idle")))
    assert (await resumed.value).status == 204
    await page.wait_for_function("window.statuses.length === 3")

    assert await page.evaluate("window.statuses") == ["ready", "submitted", "ready"]
    assert await page.locator("[data-testid=message]").count() == 0
    assert not await page.is_visible("[data-testid=error]")
    assert problems == []

    # a page opened without a chat id gets a new one in its URL, and asks for it the same way
    async with page.expect_response(lambda r: r.url.endswith("/stream?format=ui")) as asked:
        await page.goto(str(client.make_url("/usechat/index.html")))
    (chat_id,) = parse_qs(urlsplit(page.url).query)["chat"]
    response = await asked.value
    assert response.url.endswith(f"/ai/stream/chat/{chat_id}/stream?format=ui")
    assert response.status == 204


async def test_use_chat_stop_ends_the_answer_so_a_reload_finds_none(
    aiohttp_client, browser, usechat_page
):
    client = await gateway_serving(
        aiohttp_client, usechat_page, **demo(words=400, delay_ms=30), **RESUME
    )
    page = await browser.new_page()
    await page.goto(str(client.make_url("/usechat/index.html?chat=stopped")))
    await page.fill("[data-testid=prompt]", QUESTION)
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.click("[data-testid=send]")
    stream_id = await (await posted.value).header_value("X-Stream-ID")
    await page.wait_for_function(SHOWN, arg=5)
    async with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        await page.click("[data-testid=stop]")
    assert (await deleted.value).status == 204

    async with client.get(f"/ai/stream/resume/{stream_id}") as replay:
        logged = await replay.text()  # the whole stream (a UI message stream), to its end
    assert '"errorText":"The stream was stopped' in logged  # it ended upstream, and at once
    assert logged.count('"type":"text-delta"') < 100
    async with page.expect_response(resumes("stopped")) as resumed:
        await page.reload()
    assert (await resumed.value).status == 204  # nothing comes back
