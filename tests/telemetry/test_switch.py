"""On or off: the standard OpenTelemetry variables decide, off by default, and the SDK
reads its own (sampler, resource) as it does for any instrumented service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gateway.telemetry import TRACING, start_tracing, wanted_exporters
from tests.conftest import CHAT, post_stream
from tests.telemetry.conftest import no_otel_variables, tracing_to

REPO = Path(__file__).resolve().parents[2]
ENDPOINT = "http://collector:4318"


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, []),
        ({"OTEL_SERVICE_NAME": "gw", "OTEL_TRACES_SAMPLER": "always_on"}, []),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": " OTLP , console"}, ["otlp", "console"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ENDPOINT + "/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, []),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, []),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
    ],
)
def test_the_environment_turns_tracing_on(environ, exporters):
    assert wanted_exporters(environ) == exporters


def test_an_exporter_this_gateway_lacks_is_named_and_leaves_tracing_off(caplog):
    assert start_tracing({"OTEL_TRACES_EXPORTER": "zipkin"}) is None
    assert "'zipkin' is not supported" in caplog.text


def test_the_resource_is_the_sdks_from_the_environment(monkeypatch):
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging")
    tracing = start_tracing({"OTEL_TRACES_EXPORTER": "console"})
    assert tracing is not None
    attributes = tracing.provider.resource.attributes
    assert attributes["service.name"] == "ai-gateway"  # named only when nothing names it
    assert attributes["deployment.environment.name"] == "staging"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "edge-gateway")
    named = start_tracing({"OTEL_TRACES_EXPORTER": "console"})
    assert named is not None
    assert named.provider.resource.attributes["service.name"] == "edge-gateway"
    tracing.provider.shutdown()
    named.provider.shutdown()


async def test_off_by_default_no_provider_and_no_trace_context_upstream(
    monkeypatch, gateway, fake_anthropic
):
    no_otel_variables(monkeypatch)
    client = await gateway()
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    result = await post_stream(
        client, "/ai/stream/chat", CHAT, headers={"traceparent": traceparent}
    )

    assert result.text == "Hello, world!"
    assert TRACING not in client.app
    assert "traceparent" not in {name.lower() for name in fake_anthropic.seen[0].headers}


async def test_sdk_disabled_wins_over_an_exporter(receiver, monkeypatch, gateway):
    tracing_to(monkeypatch, receiver, delay_ms=10)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    client = await gateway()
    await post_stream(client, "/ai/stream/chat", CHAT)
    assert TRACING not in client.app
    await client.close()
    assert receiver.exports == 0


async def test_the_sampler_from_the_environment_is_the_one_used(
    receiver, monkeypatch, gateway, fake_anthropic
):
    tracing_to(monkeypatch, receiver, delay_ms=10)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    client = await gateway()
    await post_stream(client, "/ai/stream/chat", CHAT)
    await client.close()  # anything buffered would be exported here

    assert receiver.spans == []
    flags = fake_anthropic.seen[0].headers["traceparent"].split("-")[3]
    assert int(flags, 16) & 1 == 0  # the trace goes on upstream, marked not sampled


def test_policies_and_providers_use_the_opentelemetry_api_only():
    """The SDK and its exporters belong to the gateway's set-up (`gateway/telemetry.py`)."""
    found = []
    for layer in ("policies", "providers"):
        for path in (REPO / layer).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [alias.name for alias in getattr(node, "names", [])]
                module = getattr(node, "module", None) if isinstance(node, ast.ImportFrom) else None
                for name in [module or "", *names]:
                    if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter")):
                        found.append(f"{path.relative_to(REPO)}: {name}")
    assert found == []
