"""The operators' dashboard at `/admin`: usage by tenant and day, circuits, open streams
and the limiter's Redis state.

A browser sends no header when it navigates, so the page cannot be behind the admin key:
`GET /admin` and its assets are a shell without data, served to anyone.  The page asks
for the key, keeps it in the tab's sessionStorage and sends it as `Authorization: Bearer`
on its fetches; every data endpoint needs it, as `/admin/usage` does:

- `GET /admin/usage/days?days=N`: per tenant, the last N UTC days (today included;
  default 14, clipped to `redis.usage_retention_days`) of requests, tokens and cost;
- `GET /admin/status`: the targets' circuits, open streams, the limiter's state.

Assets are files in the package: the page's own under `gateway/static/admin/`
(revalidated by ETag on every load), vendored libraries under `gateway/static/vendor/`
(their directory names carry their version, so they are cached for a year).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import PurePosixPath

from aiohttp import web

from gateway.auth import ANONYMOUS
from gateway.ops import _json_error, _require_admin, _state
from gateway.state import GatewayState
from policies.admission.limiter import Limiter, today
from policies.admission.limits import DayUsage

DEFAULT_DAYS = 14
_READS_AT_ONCE = 8  # usage reads in flight per dashboard request: requests share the pool
_EPOCH = dt.date(1970, 1, 1)

_CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_REVALIDATE = "no-cache"
_IMMUTABLE = "public, max-age=31536000, immutable"
# The shell runs only its own files and talks only to its own origin.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    cache_control: str
    etag: str

    @classmethod
    def of(cls, body: bytes, content_type: str, cache_control: str) -> Asset:
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        return cls(body, content_type, cache_control, etag)


def add_admin_dashboard_routes(app: web.Application) -> None:
    static = resources.files("gateway").joinpath("static")
    page = Asset.of(static.joinpath("admin/index.html").read_bytes(), "text/html", _REVALIDATE)
    assets = load_assets(static)

    async def dashboard_page(request: web.Request) -> web.Response:
        return _serve(request, page, _PAGE_HEADERS)

    async def dashboard_asset(request: web.Request) -> web.Response:
        asset = assets.get(request.match_info["name"])
        if asset is None:
            raise _json_error(404, "no such dashboard asset")
        return _serve(request, asset, {"X-Content-Type-Options": "nosniff"})

    app.router.add_get("/admin", dashboard_page)
    app.router.add_get("/admin/assets/{name:.+}", dashboard_asset)
    app.router.add_get("/admin/usage/days", usage_days)
    app.router.add_get("/admin/status", status)


def load_assets(static: Traversable) -> dict[str, Asset]:
    """The page's files by the name they are served under (`dashboard.js`,
    `vendor/uplot-1.6.32/uPlot.iife.min.js`): scripts, styles and licences only."""
    assets: dict[str, Asset] = {}
    for folder, prefix, cache in (("admin", "", _REVALIDATE), ("vendor", "vendor/", _IMMUTABLE)):
        for name, file in _files(static.joinpath(folder)):
            path = PurePosixPath(name)
            kind = "text/plain" if path.name == "LICENSE" else _CONTENT_TYPES.get(path.suffix)
            if kind is not None:
                assets[prefix + name] = Asset.of(file.read_bytes(), kind, cache)
    return assets


def _files(folder: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    found: list[tuple[str, Traversable]] = []
    for entry in folder.iterdir():
        if entry.is_dir():
            found += _files(entry, f"{prefix}{entry.name}/")
        elif entry.is_file():
            found.append((prefix + entry.name, entry))
    return found


def _serve(request: web.Request, asset: Asset, headers: dict[str, str]) -> web.Response:
    common = {"Cache-Control": asset.cache_control, "ETag": asset.etag, **headers}
    if asset.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=common)
    return web.Response(
        body=asset.body, content_type=asset.content_type, charset="utf-8", headers=common
    )


async def usage_days(request: web.Request) -> web.Response:
    """`?days=N`: `{"days": [ISO dates, oldest first], "retention_days": R, "tenants":
    {id: {"name": ..., "days": [{"day", "requests", "input_tokens", "output_tokens",
    "tokens", "cost_usd"}]}}}`.  Tokens are those settled (a stream still open counts
    when it ends); cost is 0 where the usage record has none."""
    state = _state(request)
    _require_admin(request, state)
    retention = state.config.redis.usage_retention_days
    count = _days_wanted(request.query.get("days"), retention)
    last = today(state.shared.clock.wall)
    indexes = list(range(last - count + 1, last + 1))
    names = tenant_names(state)
    usage = await _read_usage(state.shared.limiter, list(names), indexes)
    tenants = {
        tenant: {
            "name": name,
            "days": [day_row(_date(i), usage[tenant, i]) for i in indexes],
        }
        for tenant, name in names.items()
    }
    return web.json_response(
        {
            "days": [_date(i).isoformat() for i in indexes],
            "retention_days": retention,
            "tenants": tenants,
        },
        headers={"Cache-Control": "no-store"},
    )


async def status(request: web.Request) -> web.Response:
    """What `/ai/stream/health` says about the parts an operator watches, behind the key."""
    state = _state(request)
    _require_admin(request, state)
    return web.json_response(
        {
            "mode": "demo" if state.chains.demo_mode else "live",
            "targets": state.shared.breaker.snapshot(),
            "open_streams": len(state.shared.streams),
            "limiter": state.shared.limiter.state,
            "draining": state.shared.draining,
            "retention_days": state.config.redis.usage_retention_days,
            "default_days": min(DEFAULT_DAYS, state.config.redis.usage_retention_days),
        },
        headers={"Cache-Control": "no-store"},
    )


def tenant_names(state: GatewayState) -> dict[str, str]:
    """Every tenant the usage record may hold, by id, with its display name (the same
    tenants as `/admin/usage`: the configured ones and the anonymous one)."""
    names = {t.id: t.name for t in state.config.tenants}
    names.setdefault(ANONYMOUS, "requests without a tenant key")
    return names


def day_row(day: dt.date, usage: DayUsage) -> dict[str, object]:
    """One tenant's day for the charts.  `cost_usd` is read when the usage record has it
    and is 0 when it has none (a model without a price, or a record from before costs)."""
    report = usage.as_dict()
    models = report.get("models")
    per_model = list(models.values()) if isinstance(models, dict) else []
    input_tokens = sum(_int(m.get("input_tokens")) for m in per_model if isinstance(m, dict))
    output_tokens = sum(_int(m.get("output_tokens")) for m in per_model if isinstance(m, dict))
    cost = report.get("cost_usd", 0)
    return {
        "day": day.isoformat(),
        "requests": _int(report.get("requests")),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "tokens": input_tokens + output_tokens,
        "cost_usd": round(float(cost), 6) if isinstance(cost, int | float) else 0.0,
    }


def _days_wanted(raw: str | None, retention: int) -> int:
    if raw is None or raw == "":
        return min(DEFAULT_DAYS, retention)
    try:
        days = int(raw)
    except ValueError:
        raise _json_error(400, "days must be a whole number of days") from None
    if days < 1:
        raise _json_error(400, "days must be at least 1")
    return min(days, retention)


async def _read_usage(
    limiter: Limiter, tenants: list[str], indexes: list[int]
) -> dict[tuple[str, int], DayUsage]:
    """Each tenant's usage on each day, a few reads at a time: a dashboard with many
    tenants must not take every Redis connection that admissions wait for."""
    gate = asyncio.Semaphore(_READS_AT_ONCE)

    async def read(tenant: str, index: int) -> DayUsage:
        async with gate:
            return await limiter.usage(tenant, index)

    keys = [(tenant, index) for tenant in tenants for index in indexes]
    found = await asyncio.gather(*(read(*key) for key in keys))
    return dict(zip(keys, found, strict=True))


def _date(index: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=index)


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
