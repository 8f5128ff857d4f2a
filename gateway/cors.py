"""CORS from `server.cors`: preflight answers and headers on every allowed response."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.config import CorsConfig


class Cors:
    def __init__(self, config: CorsConfig) -> None:
        self._config = config
        self._any_origin = "*" in config.allow_origins
        self._origins = set(config.allow_origins)
        self._methods = ", ".join(config.allow_methods)

    def allows(self, origin: str) -> bool:
        return self._any_origin or origin in self._origins

    @web.middleware
    async def preflight(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return await handler(request)
        origin = request.headers.get("Origin", "")
        method = request.headers["Access-Control-Request-Method"].upper()
        if not self.allows(origin) or method not in self._config.allow_methods:
            return web.Response(
                status=403, text="CORS preflight refused: origin or method not allowed"
            )
        requested = request.headers.get("Access-Control-Request-Headers", "")
        allowed_headers = (
            requested
            if "*" in self._config.allow_headers
            else ", ".join(self._config.allow_headers)
        )
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": self._methods,
            "Access-Control-Max-Age": str(self._config.max_age_s),
            "Vary": "Origin",
        }
        if allowed_headers:
            headers["Access-Control-Allow-Headers"] = allowed_headers
        return web.Response(status=204, headers=headers)

    async def add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        """`on_response_prepare` hook: runs for streamed responses too, before headers go out."""
        origin = request.headers.get("Origin")
        if not origin or not self.allows(origin):
            return
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        if self._config.expose_headers:
            response.headers["Access-Control-Expose-Headers"] = ", ".join(
                self._config.expose_headers
            )
