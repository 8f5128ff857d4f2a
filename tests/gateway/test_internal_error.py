"""A bug inside the policy chain (an exception that is not a `GatewayError`) is the
gateway's failure: the client gets one `internal_error` event that carries neither the
exception's text nor a traceback, the traceback goes to the gateway's log, and the
request's concurrency slot is handed back.

The bug is a plug-in provider (found through its entry point) whose stream raises
`RuntimeError`, before any text or after some.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.state import STATE
from policies.admission.limiter import Limiter
from tests.conftest import CHAT, GatewayFactory, post_stream
from tests.fakes.plugin_providers import SECRET_DETAIL, plug_in
from tests.waiting import wait_until


@pytest.mark.parametrize(
    ("when", "status", "text"), [("before_text", 500, ""), ("after_text", 200, "partial ")]
)
async def test_a_bug_in_the_chain_is_one_internal_error_event_without_its_details(
    gateway: GatewayFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    when: str,
    status: int,
    text: str,
) -> None:
    plug_in(tmp_path, monkeypatch)
    client = await gateway(
        auth={"anonymous_limits": {"concurrent_streams": 1}},
        providers={"buggy": {"type": "crashing", "crashes": 1, "when": when}},
        models={"buggy": {"provider": "buggy", "model": "buggy-1"}},
        chains={"default": {"targets": ["buggy"]}},
    )
    limiter: Limiter = client.app[STATE].current.shared.limiter

    result = await post_stream(client, "/ai/stream/chat", CHAT)

    assert result.status == status
    assert result.text == text
    result.assert_one_terminal()
    assert (result.last["type"], result.last["code"]) == ("error", "internal_error")
    for leaked in (SECRET_DETAIL.encode(), b"RuntimeError", b"Traceback", b'File "'):
        assert leaked not in result.raw
    logged = [r for r in caplog.records if r.exc_info is not None and r.exc_info[0] is RuntimeError]
    assert len(logged) == 1
    assert logged[0].levelno == logging.ERROR
    assert str(logged[0].exc_info[1]) == SECRET_DETAIL  # type: ignore[index]

    async def released() -> bool:
        return (await limiter.usage("anonymous")).as_dict()["requests"] == 1

    await wait_until(released, "the failed request's release")
    again = await post_stream(client, "/ai/stream/chat", CHAT)  # its one slot is free again
    assert again.status == 200
    assert again.text == "partial answer"
    assert again.last["type"] == "done"
