"""Safe by default: no open relay by accident, replicas that agree on stream tokens."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from gateway.config import load_config
from gateway.exposure import is_loopback, open_relay_problem
from tests.conftest import BASE_CONFIG, build_config, merge

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_config_listens_on_loopback():
    assert load_config(REPO / "config.yaml", environ={}).server.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("gateway.internal", False),
    ],
)
def test_which_addresses_are_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_mode_none_with_a_key_on_the_network_is_an_open_relay_unless_said():
    config = build_config()  # auth mode none, an anthropic key
    assert open_relay_problem("127.0.0.1", config, demo_mode=False) is None
    problem = open_relay_problem("0.0.0.0", config, demo_mode=False)
    assert problem is not None and "auth.mode: api_key" in problem
    assert "allow_unauthenticated_network" in problem
    assert open_relay_problem("0.0.0.0", config, demo_mode=True) is None  # spends nothing
    allowed = build_config(auth={"mode": "none", "allow_unauthenticated_network": True})
    assert open_relay_problem("0.0.0.0", allowed, demo_mode=False) is None


def test_serve_refuses_to_become_an_open_relay(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(merge(BASE_CONFIG, {"server": {"port": 0}})))

    assert main(["serve", "--config", str(path), "--host", "0.0.0.0"]) == 2
    assert "refusing to listen on 0.0.0.0 with auth.mode: none" in capsys.readouterr().err


async def test_replicas_without_a_shared_token_secret_are_warned_about(
    gateway, redis_server, key_prefix, caplog
):
    await gateway(redis={"url": redis_server.url, "key_prefix": key_prefix})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("auth.stream_token_secret is not set" in w for w in warnings)


async def test_a_shared_token_secret_silences_the_warning(
    gateway, redis_server, key_prefix, caplog
):
    await gateway(
        redis={"url": redis_server.url, "key_prefix": key_prefix},
        auth={"stream_token_secret": "${SECRET}"},
        env={"SECRET": "a-long-shared-secret"},
    )
    assert not [r for r in caplog.records if "stream_token_secret" in r.getMessage()]
