"""A gateway without Redis never loads redis-py: about 7 MiB of its idle memory (issue
#18's target for `serve` with the default config is 60 MiB)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SERVE_ONE_REQUEST = """
import asyncio, sys
from aiohttp.test_utils import TestClient, TestServer
from gateway.app import create_app
from gateway.config import load_config

async def main():
    config = load_config("config.yaml", environ={})
    async with TestClient(TestServer(create_app(config))) as client:
        body = {"messages": [{"role": "user", "content": "hi"}]}
        async with client.post("/ai/stream/chat", json=body) as response:
            text = await response.text()
            assert response.status == 200 and '"type":"done"' in text, text
        async with client.get("/readyz") as response:
            assert response.status == 200
    print(" ".join(sorted(m for m in sys.modules if m == "redis" or m.startswith("redis."))))

asyncio.run(main())
"""


def test_a_gateway_without_redis_serves_without_importing_redis_py() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SERVE_ONE_REQUEST],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
