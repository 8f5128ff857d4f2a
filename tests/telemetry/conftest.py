from __future__ import annotations

import os
from typing import Any

import pytest

from tests.telemetry.receiver import OtlpReceiver


@pytest.fixture
async def receiver(aiohttp_server: Any) -> OtlpReceiver:
    received = OtlpReceiver()
    server = await aiohttp_server(received.app)
    received.url = str(server.make_url("/v1/traces"))
    return received


def no_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the OpenTelemetry variables that this machine's environment may have."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


def tracing_to(monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver, delay_ms: int) -> None:
    """The standard variables, as an operator sets them, pointing at `receiver`; buffered
    spans go out every `delay_ms`."""
    no_otel_variables(monkeypatch)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-under-test")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", str(delay_ms))


@pytest.fixture
def traced_gateway(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, gateway: Any) -> Any:
    """`gateway` with tracing on, exporting to `receiver` every 10 ms.  (The receiver is
    started before the gateway's client, so it is still up when the gateway's clean-up
    exports what is left.)"""

    async def start(**overrides: Any) -> Any:
        tracing_to(monkeypatch, receiver, delay_ms=10)
        return await gateway(**overrides)

    return start
