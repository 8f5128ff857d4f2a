"""The demo page picks an answer up again when its connection drops midway (resume.enabled):
it reconnects to `GET /ai/stream/resume/<id>` with `Last-Event-ID` and the same key, and
ends with exactly the answer an uncut connection gives, once; it gives up with a clear
message when the network stays down; its Stop ends the answer upstream too; and without
resume a drop is the network error it always was.

The connection is cut by `tests.browser.network.Network`, a TCP proxy on loopback between
Chromium and the gateway that resets its connections (the live fetch stream among them).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from playwright.async_api import Browser, Page, Request

from gateway.cli import hash_api_key
from tests.browser.conftest import NetworkFactory, demo, screenshot
from tests.sse_client import read_stream

KEY = "browser-resume-key-000001"
QUESTION = "Tell me about resumable streams"
RESUME = {"resume": {"enabled": True}}
TENANT = {"auth": {"mode": "api_key"}, "tenants": [{"id": "web", "keys": [hash_api_key(KEY)]}]}
DELAYS_MS = [250, 500, 1000, 2000, 4000]  # the page's RETRY_DELAYS_MS
RETRIES = len(DELAYS_MS)
START = datetime(2026, 1, 1)

# Every status the page shows, and every text of its answer, as they change.
RECORD = """() => {
  window.statuses = [];
  window.texts = [];
  const status = document.querySelector("[data-testid=status]");
  new MutationObserver(() => {
    if (window.statuses.at(-1) !== status.textContent) window.statuses.push(status.textContent);
  }).observe(status, { subtree: true, childList: true, characterData: true });
  new MutationObserver(() => {
    const answer = document.querySelector(".assistant");
    if (answer && window.texts.at(-1) !== answer.textContent) window.texts.push(answer.textContent);
  }).observe(document.querySelector("[data-testid=log]"),
             { subtree: true, childList: true, characterData: true });
}"""
DONE = "document.querySelector('[data-testid=status]').textContent.startsWith('Done')"
SHOWN = (
    "(words) => (document.querySelector('.assistant')?.textContent ?? '').split(' ').length > words"
)


def status_is(text: str) -> str:
    return f"document.querySelector('[data-testid=status]').textContent === {text!r}"


def reconnecting(attempt: int) -> str:
    return status_is(f"Connection lost: reconnecting… ({attempt} of {RETRIES})")


async def ask(
    browser: Browser, url: str, key: str = "", paused: bool = False
) -> tuple[Page, list[Request]]:
    """A new page at `url` that asks QUESTION (with `key`), and the requests it makes;
    `paused`: the page's clock stands still, its timers fire when the test runs it."""
    page = await browser.new_page()
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    if paused:
        await page.clock.install(time=START)
    await page.goto(url)
    if paused:
        await page.clock.pause_at(START + timedelta(hours=1))
    await page.evaluate(RECORD)
    if key:
        await page.fill("[data-testid=key]", key)
    await page.fill("[data-testid=prompt]", QUESTION)
    await page.click("[data-testid=send]")
    return page, requests


async def answer_of(page: Page) -> str:
    return await page.text_content(".assistant") or ""


async def test_an_answer_cut_midway_resumes_and_ends_as_the_uncut_answer_once(
    gateway: Any, browser: Browser, network: NetworkFactory
) -> None:
    link = await network(await gateway(**demo(words=60, delay_ms=40), **RESUME, **TENANT))
    uncut_page, _ = await ask(browser, link.url("/"), KEY)  # the same answer, never cut
    page, requests = await ask(browser, link.url("/"), KEY, paused=True)
    await page.wait_for_function(SHOWN, arg=5)
    link.down = True
    link.cut()  # the stream's connection is reset midway; reconnects fail while down
    await page.wait_for_function(reconnecting(1))
    at_cut = await answer_of(page)
    await page.clock.run_for(DELAYS_MS[0])  # its first try, which fails
    await page.wait_for_function(reconnecting(2))
    link.down = False
    await page.clock.run_for(DELAYS_MS[1])  # its second, which resumes
    await page.wait_for_function(DONE)
    await uncut_page.wait_for_function(DONE)
    uncut = await answer_of(uncut_page)

    final = await answer_of(page)
    assert final == uncut
    assert 0 < len(at_cut) < len(uncut)  # the cut was midway
    texts = await page.evaluate("window.texts")
    assert all(final.startswith(text) for text in texts)  # nothing lost or repeated on the way
    statuses = await page.evaluate("window.statuses")
    assert statuses[:-1] == [
        "Streaming…",
        f"Connection lost: reconnecting… (1 of {RETRIES})",
        f"Connection lost: reconnecting… (2 of {RETRIES})",
        "Streaming…",
    ]
    assert re.fullmatch(r"Done · \d+ tokens in \d+\.\d s", statuses[-1]), statuses
    assert await page.locator("[data-testid=assistant]").count() == 1
    assert await page.locator("[data-testid=answer-meta]").all_text_contents() == ["Model: demo"]
    assert await page.locator(".assistant.error").count() == 0

    (post,) = [r for r in requests if r.method == "POST"]
    response = await post.response()
    assert response is not None
    stream_id = await response.header_value("X-Stream-ID")
    resumes = [r for r in requests if "/ai/stream/resume/" in r.url]
    assert len(resumes) == 2  # the one the network refused, and the one that resumed
    for resume in resumes:
        assert resume.url == link.url(f"/ai/stream/resume/{stream_id}")
        headers = await resume.all_headers()
        assert headers["authorization"] == f"Bearer {KEY}"  # the key the page streamed with
        assert headers["x-gateway-client"] == "demo-page"
        seen_id, _, seq = headers["last-event-id"].rpartition(":")
        assert seen_id == stream_id and int(seq) > 1
    await screenshot(page, "demo-page-resumed")


async def test_a_page_that_cannot_reconnect_gives_up_with_a_clear_message(
    gateway: Any, browser: Browser, network: NetworkFactory
) -> None:
    link = await network(await gateway(**demo(words=200, delay_ms=30), **RESUME))
    page, _ = await ask(browser, link.url("/"), paused=True)
    await page.wait_for_function(SHOWN, arg=5)
    link.down = True
    link.cut()

    await page.wait_for_function(reconnecting(1))
    shown = await answer_of(page)
    for attempt, delay_ms in enumerate(DELAYS_MS, start=1):
        await page.wait_for_function(reconnecting(attempt))
        await page.clock.run_for(delay_ms)  # the wait before its next try, which fails
    await page.wait_for_function(
        status_is(f"Network error: gave up reconnecting after {RETRIES} tries.")
    )

    answer = await answer_of(page)
    assert answer == (
        shown + "\n\nError: the connection was lost, and the answer could not be picked up again."
    )
    assert await page.locator(".assistant.error").count() == 1
    assert await page.is_enabled("[data-testid=send]")
    assert not await page.is_enabled("[data-testid=stop]")
    await screenshot(page, "demo-page-gave-up")


async def test_stop_ends_a_resumable_answer_upstream_too(gateway: Any, browser: Browser) -> None:
    client = await gateway(**demo(words=400, delay_ms=30), **RESUME)
    page, requests = await ask(browser, str(client.make_url("/")))
    await page.wait_for_function(SHOWN, arg=5)
    await page.click("[data-testid=stop]")
    await page.wait_for_function(status_is("Stopped."))

    (post,) = [r for r in requests if r.method == "POST"]
    response = await post.response()
    assert response is not None
    stream_id = await response.header_value("X-Stream-ID")
    async with client.get(f"/ai/stream/resume/{stream_id}") as replay:
        result = await read_stream(replay)  # the whole stream, as the gateway logged it
    assert result.last["type"] == "error" and result.last["code"] == "stopped"


async def test_without_resume_a_cut_is_a_network_error_as_before(
    gateway: Any, browser: Browser, network: NetworkFactory
) -> None:
    link = await network(await gateway(**demo(words=200, delay_ms=30)))
    page, requests = await ask(browser, link.url("/"))
    await page.wait_for_function(SHOWN, arg=5)
    link.cut()
    await page.wait_for_function(status_is("Network error: network error"))

    assert [r for r in requests if "/ai/stream/resume/" in r.url] == []
    assert await page.locator(".assistant.error").count() == 0  # the text so far stays
    assert await page.is_enabled("[data-testid=send]")
