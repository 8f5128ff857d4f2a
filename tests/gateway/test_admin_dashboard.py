"""The admin dashboard's routes over real HTTP: a page shell anyone may load, assets with
their types and caching, and data endpoints behind the admin key."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from aiohttp import web

from gateway.admin_dashboard import add_admin_dashboard_routes, day_row
from gateway.app import create_app
from gateway.cli import hash_api_key
from gateway.config import GatewayConfig
from gateway.state import Clock
from policies.admission.limits import DAY_MS, DayUsage
from tests.clock import FakeClock
from tests.conftest import CHAT, build_config, post_stream
from tests.fakes.script import Script
from tests.waiting import wait_until

ADMIN = "admin-key-for-the-dashboard-01"
KEY_A, KEY_B = "dashboard-tenant-a-key-0001", "dashboard-tenant-b-key-0002"
SONNET, HAIKU = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"
DAY_S = DAY_MS // 1000


def with_dashboard(app: web.Application) -> web.Application:
    """`app` with the dashboard's routes, whether or not `create_app` adds them yet."""
    if not any(
        r.resource is not None and r.resource.canonical == "/admin" for r in app.router.routes()
    ):
        add_admin_dashboard_routes(app)
    return app


def dashboard_config(**extra: Any) -> dict[str, Any]:
    return {
        "env": {"ADMIN_KEY": ADMIN},
        "admin": {"api_key": "${ADMIN_KEY}"},
        "auth": {"mode": "api_key"},
        "tenants": [
            {"id": "web-app", "name": "Marketing site", "keys": [hash_api_key(KEY_A)]},
            {"id": "batch", "keys": [hash_api_key(KEY_B)]},
        ],
        **extra,
    }


def start_dashboard(aiohttp_client, fake_anthropic):
    async def start(clock: Clock | None = None, **overrides: Any):
        overrides.setdefault("anthropic_url", fake_anthropic.url)
        config: GatewayConfig = build_config(**overrides)
        return await aiohttp_client(with_dashboard(create_app(config, clock)))

    return start


@pytest.fixture
def dashboard(aiohttp_client, fake_anthropic):
    return start_dashboard(aiohttp_client, fake_anthropic)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def get_json(client, path: str, key: str = ADMIN) -> Any:
    async with client.get(path, headers=auth(key)) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Cache-Control"] == "no-store"
        return await response.json()


# --- the key -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/usage/days", "/admin/status"])
async def test_dashboard_data_needs_the_admin_key(dashboard, path):
    client = await dashboard(**dashboard_config())
    async with client.get(path) as response:
        assert response.status == 401
        assert await response.json() == {"error": "admin key required"}
    async with client.get(path, headers=auth(KEY_A)) as response:  # a tenant's key is not it
        assert response.status == 401
    async with client.get(path, headers={"X-API-Key": ADMIN}) as response:
        assert response.status == 200


@pytest.mark.parametrize("path", ["/admin/usage/days", "/admin/status"])
async def test_dashboard_data_is_off_without_an_admin_key(dashboard, path):
    client = await dashboard()
    async with client.get(path, headers=auth("anything")) as response:
        assert response.status == 403
        assert "admin.api_key" in (await response.json())["error"]


# --- the page and its assets -------------------------------------------------------------


async def test_the_page_is_a_shell_without_data_and_its_assets_are_served(dashboard):
    client = await dashboard(**dashboard_config())
    async with client.get("/admin") as response:  # no key: a browser cannot send one here
        assert response.status == 200
        assert response.content_type == "text/html"
        assert response.charset == "utf-8"
        assert response.headers["Cache-Control"] == "no-cache"
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        page = await response.text()
        etag = response.headers["ETag"]
    assert ADMIN not in page and "web-app" not in page and "Marketing" not in page
    assert "<script>" not in page  # scripts only from files (the CSP allows no inline one)

    linked = re.findall(r'(?:src|href)="(/admin/assets/[^"]+)"', page)
    kinds = {".js": "text/javascript", ".css": "text/css", "LICENSE": "text/plain"}
    assert len(linked) == 5
    for path in linked:
        async with client.get(path) as response:
            assert response.status == 200, path
            kind = next(v for k, v in kinds.items() if path.endswith(k))
            assert response.content_type == kind, path
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            vendored = path.startswith("/admin/assets/vendor/uplot-1.6.32/")
            assert response.headers["Cache-Control"] == (
                "public, max-age=31536000, immutable" if vendored else "no-cache"
            ), path

    async with client.get("/admin", headers={"If-None-Match": etag}) as response:
        assert response.status == 304
    async with client.get("/admin/assets/vendor/uplot-1.6.32/uPlot.iife.min.js") as response:
        assert (await response.text()).startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32)")


@pytest.mark.parametrize(
    "path",
    [
        "/admin/assets/nothing.js",
        "/admin/assets/index.html",  # the page is served at /admin only
        "/admin/assets/../ops.py",
        "/admin/assets/vendor/README.md",  # notes for maintainers, not served
    ],
)
async def test_only_the_dashboards_own_files_are_served(dashboard, path):
    client = await dashboard(**dashboard_config())
    async with client.get(path) as response:
        assert response.status == 404


# --- usage by day ------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def usage_store(request) -> dict[str, Any]:
    """Where usage is kept: in this process, or in a real Redis."""
    if request.param == "memory":
        return {}
    server = request.getfixturevalue("redis_server")
    return {"redis": {"url": server.url, "key_prefix": request.getfixturevalue("key_prefix")}}


async def test_usage_days_gives_each_tenant_its_days_oldest_first(dashboard, usage_store):
    clock = FakeClock()  # 2027-01-15, 08:00 UTC
    client = await dashboard(clock.clock, **dashboard_config(**usage_store))
    await post_stream(client, "/ai/stream/chat", CHAT, headers=auth(KEY_A))
    clock.advance(2 * DAY_S)
    await post_stream(client, "/ai/stream/chat", CHAT, headers=auth(KEY_A))
    await post_stream(client, "/ai/stream/chat", {**CHAT, "model": "haiku"}, headers=auth(KEY_B))
    await post_stream(client, "/ai/stream/chat", CHAT, headers=auth(KEY_B))

    report = await get_json(client, "/admin/usage/days?days=3")
    assert report["days"] == ["2027-01-15", "2027-01-16", "2027-01-17"]
    assert report["retention_days"] == 35
    assert list(report["tenants"]) == ["web-app", "batch", "anonymous"]

    def day(date: str, requests: int = 0) -> dict[str, Any]:  # the fake: 11 in, 4 out each
        tokens = {"input_tokens": 11 * requests, "output_tokens": 4 * requests}
        return {"day": date, "requests": requests, **tokens, "tokens": 15 * requests}

    def without_cost(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        assert all(isinstance(row["cost_usd"], float) and row["cost_usd"] >= 0 for row in rows)
        return [{k: v for k, v in row.items() if k != "cost_usd"} for row in rows]

    first, second, third = report["days"]
    web_app, batch = report["tenants"]["web-app"], report["tenants"]["batch"]
    assert web_app["name"] == "Marketing site" and batch["name"] == ""
    assert without_cost(web_app["days"]) == [day(first, 1), day(second), day(third, 1)]
    assert without_cost(batch["days"]) == [day(first), day(second), day(third, 2)]
    anonymous = report["tenants"]["anonymous"]["days"]
    assert anonymous == [{**day(date), "cost_usd": 0.0} for date in report["days"]]


async def test_days_are_clipped_to_the_usage_retention(dashboard):
    client = await dashboard(**dashboard_config(redis={"usage_retention_days": 5}))
    assert len((await get_json(client, "/admin/usage/days?days=30"))["days"]) == 5
    assert len((await get_json(client, "/admin/usage/days"))["days"]) == 5  # 14, clipped
    assert len((await get_json(client, "/admin/usage/days?days=2"))["days"]) == 2
    status = await get_json(client, "/admin/status")
    assert (status["retention_days"], status["default_days"]) == (5, 5)

    client = await dashboard(**dashboard_config())
    assert len((await get_json(client, "/admin/usage/days"))["days"]) == 14
    assert len((await get_json(client, "/admin/usage/days?days=400"))["days"]) == 35
    for bad in ("0", "-3", "two", "1.5"):
        async with client.get(f"/admin/usage/days?days={bad}", headers=auth(ADMIN)) as response:
            assert response.status == 400, bad
            assert "days" in (await response.json())["error"]


class _Recorded(DayUsage):
    """A usage record whose report is given: with or without `cost_usd`."""

    def __init__(self, report: dict[str, object]) -> None:
        super().__init__()
        self.report = report

    def as_dict(self) -> dict[str, object]:
        return self.report


def test_a_days_cost_is_read_when_recorded_and_zero_when_not():
    import datetime as dt

    models = {"m": {"input_tokens": 7, "output_tokens": 3, "requests": 2}}
    day = dt.date(2027, 1, 15)
    without = day_row(day, _Recorded({"tokens": 10, "requests": 2, "models": models}))
    with_cost = day_row(
        day, _Recorded({"tokens": 10, "requests": 2, "cost_usd": 0.0123, "models": models})
    )
    assert without == {
        "day": "2027-01-15",
        "requests": 2,
        "input_tokens": 7,
        "output_tokens": 3,
        "tokens": 10,
        "cost_usd": 0.0,
    }
    assert with_cost == {**without, "cost_usd": 0.0123}


# --- now: circuits, streams, limiter -----------------------------------------------------


async def test_status_shows_circuits_open_streams_and_the_limiter(dashboard, fake_anthropic):
    chain = {
        "targets": ["sonnet", "haiku"],
        "retry": {"max_attempts": 1},
        "circuit_breaker": {"failure_threshold": 1, "cooldown_s": 600},
    }
    client = await dashboard(**dashboard_config(chains={"default": chain}))
    held = asyncio.Event()
    fake_anthropic.script(Script(status=500), Script(), Script(hold=held))
    fell_over = await post_stream(client, "/ai/stream/chat", CHAT, headers=auth(KEY_A))
    assert fell_over.last["model"] == HAIKU
    streaming = asyncio.create_task(
        post_stream(client, "/ai/stream/chat", CHAT, headers=auth(KEY_B))
    )

    async def one_open() -> bool:
        return (await get_json(client, "/admin/status"))["open_streams"] == 1

    await wait_until(one_open, "the held stream to be open")
    status = await get_json(client, "/admin/status")
    assert status["targets"][f"anthropic/{SONNET}"] == {
        "state": "open",
        "recent_failures": 0,
        "trips": 1,
    }
    assert status["targets"][f"anthropic/{HAIKU}"]["state"] == "closed"
    assert status["limiter"] == {"backend": "memory", "redis": "not configured"}
    assert (status["mode"], status["draining"]) == ("live", False)
    held.set()
    assert (await streaming).status == 200
    assert (await get_json(client, "/admin/status"))["open_streams"] == 0
