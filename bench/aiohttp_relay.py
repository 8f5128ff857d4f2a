"""The same relay as `bench.relay`, written on aiohttp's server and client: a second floor.

The gateway serves on aiohttp and calls its upstreams with aiohttp's client, so part of
what it spends above the raw relay is what those two cost before the gateway does
anything: parsing both HTTP messages, chunked encoding, and one task wake-up per chunk
(the raw relay copies bytes in its socket callback, with no task at all).  This relay
pays exactly that and nothing more: no authentication, limits, parsing of the answer or
re-encoding; each upstream chunk is written to the client as it arrives.

    python -m bench.aiohttp_relay --port 9201 --upstream http://127.0.0.1:9100/v1/messages
"""

from __future__ import annotations

import argparse

import aiohttp
import uvloop
from aiohttp import web

from bench.relay import BODY

HTTP = web.AppKey("http", aiohttp.ClientSession)
HEADERS = {
    "Content-Type": "application/json",
    "x-api-key": "sk-bench",
    "anthropic-version": "2023-06-01",
}


def app(upstream_url: str) -> web.Application:
    async def start_session(app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        app[HTTP] = aiohttp.ClientSession(connector=connector)

    async def close_session(app: web.Application) -> None:
        await app[HTTP].close()

    async def relay(request: web.Request) -> web.StreamResponse:
        await request.read()
        async with request.app[HTTP].post(upstream_url, data=BODY, headers=HEADERS) as upstream:
            response = web.StreamResponse(
                status=upstream.status, headers={"Content-Type": "text/event-stream"}
            )
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    application = web.Application()
    application.on_startup.append(start_session)
    application.on_cleanup.append(close_session)
    application.router.add_post("/v1/messages", relay)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the fake's /v1/messages URL")
    args = parser.parse_args()
    web.run_app(
        app(args.upstream),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
        backlog=8192,
    )


if __name__ == "__main__":
    main()
