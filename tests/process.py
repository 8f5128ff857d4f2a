"""Run `ai-gateway serve` as a real process, the way users and orchestrators do."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class GatewayProcess:
    url: str
    process: asyncio.subprocess.Process
    output: list[str] = field(default_factory=list)

    async def stop(self) -> str:
        if self.process.returncode is None:
            self.process.terminate()
        out, _ = await asyncio.wait_for(self.process.communicate(), 15)
        self.output.append(out.decode())
        return "".join(self.output)


@asynccontextmanager
async def running_gateway(
    config: Path | None = None, env: dict[str, str] | None = None
) -> AsyncIterator[GatewayProcess]:
    port = free_port()
    base_env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "REDIS_URL")}
    args = ["-m", "gateway", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if config is not None:
        args += ["--config", str(config)]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=REPO,
        env={**base_env, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    gateway = GatewayProcess(f"http://127.0.0.1:{port}", process)
    try:
        await _wait_until_healthy(gateway)
        yield gateway
    finally:
        await gateway.stop()


async def _wait_until_healthy(gateway: GatewayProcess) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            if gateway.process.returncode is not None:
                raise RuntimeError(f"gateway exited: {await gateway.stop()}")
            try:
                async with session.get(f"{gateway.url}/ai/stream/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("gateway did not become healthy in 10 s")
