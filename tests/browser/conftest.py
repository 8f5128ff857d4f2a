"""A real headless Chromium (Debian's /usr/bin/chromium), driven by Playwright, for the
demo page's tests; the demo-provider config they start gateways with; and a network
between the two that a test can cut."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import async_playwright

from tests.browser.network import Network

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def require_chromium() -> None:
    if shutil.which(CHROMIUM):
        return
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed (apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


@pytest.fixture
async def browser():
    require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        await browser.close()


NetworkFactory = Callable[[TestClient[Any, Any]], Awaitable[Network]]


@pytest.fixture
async def network() -> AsyncIterator[NetworkFactory]:
    """`await network(client)`: a Network in front of the gateway `client`; open the
    page at `network.url("/")` for its requests to go through it."""
    started: list[Network] = []

    async def start(client: TestClient[Any, Any]) -> Network:
        server = client.server
        link = Network(str(server.host), int(server.port or 0))
        await link.start()
        started.append(link)
        return link

    yield start
    for link in started:
        await link.close()


def demo(words: int, delay_ms: int) -> dict[str, Any]:
    """Config overrides for demo mode: no provider key, the demo provider's pace and length."""
    return {
        "api_key": "",
        "providers": {"demo": {"type": "demo", "chunk_delay_ms": delay_ms, "words": words}},
    }


async def screenshot(page: Any, name: str) -> None:
    """Keep what the page looks like as a test artifact: `test-artifacts/<name>.png`."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
