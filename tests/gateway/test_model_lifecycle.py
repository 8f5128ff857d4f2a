"""Configured models that Anthropic deprecated or retired: warned about, or refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from gateway.app import create_app
from gateway.cli import main
from gateway.config import ConfigError
from tests.clock import FakeClock
from tests.conftest import BASE_CONFIG, build_config, merge

RETIRED = {  # (the tests' base config allows this retired model: this says it does not)
    "sonnet": {
        "provider": "anthropic",
        "model": "claude-sonnet-4-5-20250929",
        "allow_retired": False,
    }
}
BEFORE_ITS_RETIREMENT = datetime(2026, 10, 15, tzinfo=UTC).timestamp()  # deprecated then


async def test_a_retired_model_stops_start_up_naming_it_and_its_replacement(aiohttp_client):
    with pytest.raises(ConfigError) as info:
        await aiohttp_client(create_app(build_config(models=RETIRED)))
    message = str(info.value)
    assert "models.sonnet: claude-sonnet-4-5-20250929 was retired on 2026-11-30" in message
    assert "use claude-sonnet-5-5" in message and "allow_retired: true" in message


async def test_a_retired_model_may_be_allowed_and_is_then_a_warning(gateway):
    client = await gateway(models={"sonnet": {**RETIRED["sonnet"], "allow_retired": True}})
    async with client.get("/ai/stream/health") as response:
        health = await response.json()
    assert health["model"] == "claude-sonnet-4-5-20250929"  # the guide's shape: the primary
    assert health["warnings"] == [
        "models.sonnet: claude-sonnet-4-5-20250929 was retired on 2026-11-30 and fails "
        "every request; use claude-sonnet-5-5"
    ]


async def test_a_deprecated_model_is_a_warning_at_start_up_and_in_health(gateway, caplog):
    client = await gateway(models=RETIRED, clock=FakeClock(BEFORE_ITS_RETIREMENT).clock)
    async with client.get("/ai/stream/health") as response:
        warnings = (await response.json())["warnings"]
    expected = (
        "models.sonnet: claude-sonnet-4-5-20250929 is deprecated and retires on 2026-11-30; "
        "move to claude-sonnet-5-5"
    )
    assert warnings == [expected]
    assert expected in [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


async def test_current_models_give_no_warning(gateway):
    models = {"sonnet": {"provider": "anthropic", "model": "claude-sonnet-5-5"}}
    client = await gateway(models=models)
    async with client.get("/ai/stream/health") as response:
        assert (await response.json())["warnings"] == []


def test_check_config_refuses_a_retired_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(merge(BASE_CONFIG, {"models": RETIRED})))

    assert main(["check-config", str(path)]) == 2
    assert "was retired on 2026-11-30" in capsys.readouterr().err
