"""The `ai-gateway` command as users run it: a real process, the shipped config."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from gateway.cli import hash_api_key, main
from tests.process import running_gateway
from tests.sse_client import read_stream

REPO = Path(__file__).resolve().parents[2]


def test_check_config_accepts_the_shipped_file(capsys):
    assert main(["check-config", str(REPO / "config.yaml")]) == 0
    assert "default chain 'default' → sonnet → haiku" in capsys.readouterr().out


def test_check_config_rejects_a_bad_file_with_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "config.yaml").read_text().replace("type: demo", "type: dmeo"))
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "providers.demo: unknown provider type 'dmeo' (available: anthropic, demo" in err


def test_check_config_rejects_bad_provider_options(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (REPO / "config.yaml").read_text().replace("chunk_delay_ms: 30", "chunk_delay: 30")
    )
    assert main(["check-config", str(bad)]) == 2
    assert "providers.demo: chunk_delay: unknown key" in capsys.readouterr().err


def test_hash_key_prints_sha256_form(capsys):
    assert main(["hash-key", "secret"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == hash_api_key("secret")
    assert out == "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"


async def test_serve_with_shipped_config_and_no_key_streams_the_demo():
    async with running_gateway() as gateway, aiohttp.ClientSession() as session:
        async with session.get(f"{gateway.url}/ai/stream/health") as response:
            health = await response.json()
        body = {"prompt": "Write a haiku about coding", "max_tokens": 100, "temperature": 0.7}
        async with session.post(f"{gateway.url}/ai/stream/generate", json=body) as response:
            result = await read_stream(response)
    output = "".join(gateway.output)
    assert health["mode"] == "demo"
    assert len(result.chunks) > 5  # arrived in steps, not at once
    result.assert_one_terminal()
    assert result.last["model"] == "demo"
    assert "demo mode" in output
    assert "Traceback" not in output
