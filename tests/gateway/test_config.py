"""config.yaml validation: a bad file stops start-up with one message naming key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from gateway.config import ConfigError, GatewayConfig, load_config, parse_config
from policies.settings import (
    BreakerOverrides,
    BreakerSettings,
    RetryOverrides,
    RetrySettings,
    TimeoutOverrides,
    TimeoutSettings,
)
from tests.conftest import BASE_CONFIG, merge

ENV = {"ANTHROPIC_API_KEY": "sk-test", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
REPO = Path(__file__).resolve().parents[2]


def _parse(overrides=None, env=ENV, text=None):
    text = text if text is not None else yaml.safe_dump(merge(BASE_CONFIG, overrides or {}))
    return parse_config(text, source="config.yaml", environ=env)


def test_shipped_config_is_valid_and_defaults_to_sonnet():
    config = load_config(REPO / "config.yaml", environ={})
    sonnet = config.models[config.chains[config.default_chain].targets[0].model]
    assert sonnet.model == "claude-sonnet-5-5"
    assert config.server.port == 8080
    assert config.redis.url == ""


def test_variables_and_defaults_are_interpolated():
    config = load_config(REPO / "config.yaml", environ={"AI_GATEWAY_PORT": "9090"})
    assert config.server.port == 9090
    assert config.providers["anthropic"].options()["base_url"] == "https://api.anthropic.com"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"server": {"port": "eighty"}}, "server.port: Input should be a valid integer"),
        ({"server": {"prot": 1}}, "server.prot: unknown key"),
        ({"server": {"keepalive_seconds": 0}}, "server.keepalive_seconds: Input should be greater"),
        ({"server": {"date_context": {"timezone": "Mars/Base"}}}, "unknown time zone 'Mars/Base'"),
        ({"redis": {"on_error": "maybe"}}, "redis.on_error: Input should be 'fail_open'"),
        ({"models": {"opus": {"provider": "nowhere", "model": "x"}}}, "models.opus.provider"),
        ({"chains": {"default": {"targets": ["sonnet", "haikuu"]}}}, "chains.default.targets[1]"),
        ({"chains": {"default": {"targets": []}}}, "chains.default.targets: List should have"),
        ({"default_chain": "fast"}, "default_chain: unknown chain 'fast'"),
        ({"models": {"opus": {"provider": "anthropic"}}}, "models.opus.model: required key"),
    ],
)
def test_bad_values_name_the_key_path(overrides, message):
    with pytest.raises(ConfigError) as info:
        _parse(overrides)
    assert message in str(info.value)
    assert str(info.value).startswith("config.yaml: ")


def test_missing_environment_variable_is_named():
    with pytest.raises(ConfigError, match=r"providers\.anthropic\.api_key: environment variable "):
        _parse(env={"ANTHROPIC_BASE_URL": "x"})


def test_literal_secret_in_the_file_is_refused():
    overrides = {"providers": {"anthropic": {"api_key": "sk-ant-literal"}}}
    with pytest.raises(ConfigError, match="secrets are read from the environment only"):
        _parse(overrides)


def test_invalid_yaml_and_non_mapping_are_reported():
    with pytest.raises(ConfigError, match="not valid YAML"):
        _parse(text="server: [unclosed")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        _parse(text="- just a list")


def test_unreadable_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    "steps",
    [
        ["retry", "fallback"],
        ["circuit_breaker", "fallback", "retry"],
        ["fallback", "timeouts", "retry"],
        ["fallback", "date_context"],
    ],
)
def test_policy_steps_out_of_their_order_are_refused_naming_the_rule(steps):
    with pytest.raises(ConfigError) as info:
        _parse({"policies": steps})
    message = str(info.value)
    assert "policies: steps must keep the order date_context, fallback, retry," in message
    assert "fallback picks the target" in message


def test_policy_steps_may_be_left_out_but_not_repeated():
    assert _parse({"policies": ["fallback", "timeouts"]}).policies == ["fallback", "timeouts"]
    with pytest.raises(ConfigError, match="each step may appear once"):
        _parse({"policies": ["fallback", "fallback"]})


@pytest.mark.parametrize(
    ("overrides_model", "settings_model"),
    [
        (RetryOverrides, RetrySettings),
        (TimeoutOverrides, TimeoutSettings),
        (BreakerOverrides, BreakerSettings),
    ],
)
def test_a_targets_overrides_have_the_fields_and_bounds_of_the_settings(
    overrides_model, settings_model
):
    full, partial = settings_model.model_fields, overrides_model.model_fields
    assert set(partial) == set(full)
    for name, field in full.items():
        assert partial[name].metadata == field.metadata, name  # the same ge/gt/le bounds
        assert partial[name].default is None


def test_a_target_override_out_of_bounds_names_its_path():
    targets = ["sonnet", {"model": "haiku", "retry": {"max_attempts": 0}}]
    with pytest.raises(ConfigError) as info:
        _parse({"chains": {"default": {"targets": targets}}})
    assert "chains.default.targets[1].retry.max_attempts: Input should be greater" in str(
        info.value
    )


def test_a_target_override_replaces_only_what_it_names():
    targets = [{"model": "haiku", "retry": {"max_attempts": 5}, "timeouts": {"idle_s": 2}}]
    config = _parse({"chains": {"default": {"targets": targets, "retry": {"deadline_s": 9}}}})
    chain = config.chains["default"]
    retry, timeouts, _ = chain.settings_for(chain.targets[0])
    assert (retry.max_attempts, retry.deadline_s) == (5, 9)
    assert (timeouts.idle_s, timeouts.first_token_s) == (2, 30)


def test_every_dangling_name_is_reported_by_the_schema_itself():
    with pytest.raises(ValidationError) as info:
        GatewayConfig.model_validate(
            {
                "providers": {"p": {"type": "demo"}},
                "models": {"m": {"provider": "nowhere", "model": "x"}},
                "chains": {"default": {"targets": ["m", "ghost"]}},
                "tenants": [{"id": "t", "chains": ["nope"]}],
            }
        )
    message = str(info.value)
    for path in ("models.m.provider", "chains.default.targets[1]", "tenants[0].chains"):
        assert path in message
