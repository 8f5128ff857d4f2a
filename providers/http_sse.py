"""JSON POSTs over the gateway's shared aiohttp session: their Server-Sent Events
streamed (`post_sse`), or their one JSON answer (`post_json`).

Shared by the providers that read an upstream's SSE wire protocol themselves
(`openai_compatible`, and `anthropic` with `client: wire`): HTTP and transport failures
become the typed errors of `providers.errors`, and a stream closed midway closes its
connection instead of returning a half-read one to the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from providers.errors import (
    UnsendableRequest,
    UpstreamConnectionError,
    UpstreamProtocolError,
    UpstreamTimeout,
    parse_retry_after,
    upstream_error_for_status,
)
from providers.tracing import with_trace_context

Frame = tuple[bytes, bytes]  # (event name, data); either may be empty


async def post_sse(
    http: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    body: dict[str, Any],
    *,
    provider: str,
    connect_timeout_s: float,
    read_timeout_s: float,
) -> AsyncGenerator[Frame, None]:
    posting = _posted(http, url, headers, body, provider, connect_timeout_s, read_timeout_s)
    async with posting as response:
        frames = FrameSplitter()
        try:
            async for chunk in response.content.iter_any():
                for frame in frames.feed(chunk):
                    yield frame
        except BaseException:
            response.close()
            raise


async def post_json(
    http: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    body: dict[str, Any],
    *,
    provider: str,
    timeout_s: float,
) -> Any:
    """POST `body` and return its decoded JSON answer; failures as `post_sse`'s."""
    async with _posted(http, url, headers, body, provider, timeout_s, timeout_s) as response:
        async with asyncio.timeout(timeout_s):
            raw = await response.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError(
            f"The upstream provider '{provider}' sent an answer the gateway could not read.",
            provider=provider,
        ) from None


@asynccontextmanager
async def _posted(
    http: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    body: dict[str, Any],
    provider: str,
    connect_timeout_s: float,
    read_timeout_s: float,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """The 200 response to a JSON POST; any other status, time-out or transport failure
    (while it is read, too) as the typed errors of `providers.errors`.  The request carries
    the current trace context (`traceparent`) when tracing is on."""
    # No per-read timer: the policy chain's idle time-out bounds each wait more cheaply;
    # `read_timeout_s` caps only the wait for the response headers.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=None)
    try:
        payload = orjson.dumps(body)
    except orjson.JSONEncodeError:
        raise UnsendableRequest(provider) from None
    try:
        async with asyncio.timeout(read_timeout_s):
            response = await http.post(
                url, data=payload, headers=with_trace_context(headers), timeout=timeout
            )
        async with response:
            if response.status != 200:
                detail = error_message(await response.read())
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                raise upstream_error_for_status(response.status, provider, retry_after, detail)
            yield response
    except (TimeoutError, aiohttp.ServerTimeoutError):
        raise UpstreamTimeout(
            f"The upstream provider '{provider}' timed out.", provider=provider
        ) from None
    except aiohttp.ClientError:
        raise UpstreamConnectionError(
            f"The connection to the upstream provider '{provider}' failed.", provider=provider
        ) from None


def error_message(body: bytes) -> str:
    """`error.message` of an upstream's JSON error body (Anthropic's and OpenAI's shape)."""
    try:
        error = orjson.loads(body).get("error")
    except (ValueError, AttributeError):
        return ""
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else ""


class FrameSplitter:
    """Whole SSE frames from a byte stream, however the network cut it into chunks.

    A plain object fed by `post_sse`'s loop rather than a generator of its own: every
    generator between the socket and the client costs each chunk a resumption."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[Frame]:
        buffer = self._buffer + (chunk.replace(b"\r\n", b"\n") if b"\r" in chunk else chunk)
        frames: list[Frame] = []
        start = 0
        while (end := buffer.find(b"\n\n", start)) >= 0:
            frame = parse_frame(buffer[start:end])
            start = end + 2
            if frame[0] or frame[1]:
                frames.append(frame)
        self._buffer = buffer[start:]
        return frames


async def drain(frames: AsyncGenerator[Frame, None]) -> None:
    """Read to the end of the response after its last event, so that its connection goes
    back to the pool for the next request instead of being closed half-read."""
    async for _ in frames:
        pass


def parse_frame(raw: bytes) -> Frame:
    event = b""
    data: list[bytes] = []
    for line in raw.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            event = line[6:].strip()
    return event, b"\n".join(data)
