"""Reading the gateway's streams the two ways clients do.

`parse_sse` follows the SSE specification (fields, comments, multi-line data, CRLF).
`naive_events` is the integration guide's way: split each received chunk on "\\n" and
JSON-parse lines that start with "data: ".  Both must always work on our streams.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class StreamResult:
    status: int
    headers: dict[str, str]
    raw: bytes
    chunks: list[bytes]
    events: list[dict[str, Any]] = field(default_factory=list)
    naive: list[dict[str, Any]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(e["text"] for e in self.events if e["type"] == "content")

    @property
    def last(self) -> dict[str, Any]:
        return self.events[-1]

    def assert_one_terminal(self) -> None:
        kinds = [e["type"] for e in self.events]
        terminals = [k for k in kinds if k in ("done", "error")]
        assert len(terminals) == 1, kinds
        assert kinds[-1] in ("done", "error"), kinds
        assert self.naive == self.events


def parse_sse(raw: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    events: list[dict[str, Any]] = []
    comments: list[str] = []
    data: list[str] = []
    for line in text.split("\n"):
        if line == "":
            if data:
                events.append(json.loads("\n".join(data)))
                data = []
            continue
        if line.startswith(":"):
            comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
    assert not data, "stream ended inside an event"
    return events, comments


def naive_events(chunks: list[bytes]) -> list[dict[str, Any]]:
    events = []
    for chunk in chunks:
        for line in chunk.decode("utf-8").split("\n"):
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


async def read_stream(response: aiohttp.ClientResponse) -> StreamResult:
    chunks = [chunk async for chunk in response.content.iter_any()]
    raw = b"".join(chunks)
    events, comments = parse_sse(raw)
    return StreamResult(
        status=response.status,
        headers=dict(response.headers),
        raw=raw,
        chunks=chunks,
        events=events,
        naive=naive_events(chunks),
        comments=comments,
    )
