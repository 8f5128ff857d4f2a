"""A real headless Chromium (Debian's /usr/bin/chromium), driven by Playwright, for the
demo page's tests; and the demo-provider config they start gateways with."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright

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
