"""Every example in examples/ runs against a live gateway (demo provider) on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from gateway.cli import hash_api_key
from providers.demo import demo_answer_chunks

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WEB = EXAMPLES / "web"
DEMO = {"api_key": "", "providers": {"demo": {"type": "demo", "chunk_delay_ms": 1, "words": 30}}}


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{tool} is not installed")
    pytest.skip(f"{tool} is not installed")


async def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 300)
    return process.returncode, out.decode(), err.decode()


@pytest.fixture(scope="session")
def web_examples_built() -> None:
    """Compile the route handler, once per session, with the type packages the install step
    installed from package-lock.json (`npm ci --prefix examples/web`)."""
    import subprocess

    if not (WEB / "node_modules/.bin/tsc").exists():
        pytest.fail(
            "examples/web has no node_modules: run the README's test command, whose install "
            "step runs npm ci --prefix examples/web"
        )
    subprocess.run(
        [str(WEB / "node_modules/.bin/tsc"), "-p", "tsconfig.route.json"],
        cwd=WEB,
        check=True,
        timeout=300,
    )


async def base_url(gateway, **config) -> str:
    client = await gateway(**{**DEMO, **config})
    return str(client.make_url("")).rstrip("/")


async def test_corrected_fetch_reader_runs_under_node(gateway):
    node = require("node")
    url = await base_url(gateway)
    code, out, err = await run(node, str(EXAMPLES / "js/fetch-reader.mjs"), url, "hello")
    assert code == 0, err
    assert out.startswith("This is the offline demo provider")
    assert out.rstrip().endswith("[model: demo]")


async def test_fetch_reader_exits_non_zero_on_an_error(gateway):
    node = require("node")
    url = await base_url(
        gateway, auth={"mode": "api_key"}, tenants=[{"id": "t", "keys": [hash_api_key("k1")]}]
    )
    code, _, err = await run(node, str(EXAMPLES / "js/fetch-reader.mjs"), url, "hello")
    assert code == 1
    assert "unauthorized: Missing API key" in err
    code, out, _ = await run(
        node, str(EXAMPLES / "js/fetch-reader.mjs"), url, "hello", env={"AI_GATEWAY_KEY": "k1"}
    )
    assert code == 0 and "[model: demo]" in out


async def test_web_examples_type_check(web_examples_built):
    code, out, err = await run(
        str(WEB / "node_modules/.bin/tsc"), "--noEmit", "-p", "tsconfig.json", cwd=WEB
    )
    assert code == 0, out + err


async def test_next_route_handler_proxies_the_stream_with_a_plain_response(
    gateway, web_examples_built
):
    node = require("node")
    url = await base_url(gateway)
    code, out, err = await run(
        node, "run-route.mjs", "What is FastAPI?", env={"AI_GATEWAY_URL": url}, cwd=WEB
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == 200
    assert result["type"] == "text/event-stream; charset=utf-8"
    kinds = [e["type"] for e in result["events"]]
    words = len(demo_answer_chunks("What is FastAPI?", 30, 2048))  # up to a sentence's end
    assert kinds == ["content"] * words + ["done"]
    assert result["events"][-1]["model"] == "demo"


async def test_python_client_example(gateway):
    url = await base_url(gateway)
    code, out, err = await run(sys.executable, str(EXAMPLES / "python/stream_chat.py"), url, "hi")
    assert code == 0, err
    assert out.rstrip().endswith("[model: demo]")


async def test_curl_examples(gateway):
    require("curl")
    url = await base_url(gateway)
    code, out, err = await run("bash", str(EXAMPLES / "curl.sh"), env={"AI_GATEWAY_URL": url})
    assert code == 0, err
    assert out.count('"type":"done"') == 2
    assert '"streaming_enabled": true' in out


@pytest.mark.parametrize("sdk", ["anthropic", "openai"])
async def test_the_official_javascript_sdks_stream_through_the_gateway(gateway, sdk):
    node = require("node")
    if not (WEB / "node_modules/openai").exists():
        pytest.fail("examples/web has no node_modules: run the README's test command")
    url = await base_url(
        gateway, auth={"mode": "api_key"}, tenants=[{"id": "t", "keys": [hash_api_key("k1")]}]
    )
    code, out, err = await run(node, "sdk-stream.mjs", sdk, url, "k1", "What is FastAPI?", cwd=WEB)
    assert code == 0, err
    assert out.startswith("This is the offline demo provider")
    assert "[model: demo" in err
