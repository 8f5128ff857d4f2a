"""`ai-gateway chat`: a terminal client that streams answers as they arrive.

`ai-gateway chat "prompt"` asks once; with no prompt it reads questions from stdin and
keeps the conversation.  The URL and key come from AI_GATEWAY_URL and AI_GATEWAY_KEY.
The model that answered is printed at the end (on stderr); an error event exits 1.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import aiohttp

from gateway.auth import CHAT_CLI_AGENT


def url_problem(url: str, name: str) -> str | None:
    """What is wrong with a gateway URL given on the command line or in `name`."""
    if not url.startswith(("http://", "https://")):
        return f"{name} {url!r} has no scheme: write http://{url.removeprefix('//')}"
    return None


async def chat(
    prompt: str | None,
    model: str | None,
    system: str | None,
    max_tokens: int,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    lines: TextIO = sys.stdin,
) -> int:
    url = os.environ.get("AI_GATEWAY_URL", "http://127.0.0.1:8080").rstrip("/")
    if problem := url_problem(url, "AI_GATEWAY_URL"):
        print(f"ai-gateway chat: {problem}", file=err)
        return 2
    headers = {"Content-Type": "application/json", "User-Agent": CHAT_CLI_AGENT}
    if os.environ.get("AI_GATEWAY_KEY"):
        headers["Authorization"] = f"Bearer {os.environ['AI_GATEWAY_KEY']}"
    history: list[dict[str, str]] = []
    async with aiohttp.ClientSession(headers=headers) as session:
        questions: Iterable[str] = [prompt] if prompt else _questions(lines, err)
        for question in questions:
            history.append({"role": "user", "content": question})
            body: dict[str, Any] = {"messages": history, "max_tokens": max_tokens}
            if model:
                body["model"] = model
            if system:
                body["system"] = system
            try:
                answer = await _stream(session, f"{url}/ai/stream/chat", body, out, err)
            except aiohttp.ClientError as exc:
                print(f"error: cannot reach {url} ({exc})", file=err)
                return 1
            if answer is None:
                return 1
            history.append({"role": "assistant", "content": answer})
    return 0


def _questions(lines: TextIO, err: TextIO) -> Iterator[str]:
    while True:
        print("> ", end="", file=err, flush=True)
        line = lines.readline()
        if not line:
            return
        if line.strip():
            yield line.strip()


async def _stream(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], out: TextIO, err: TextIO
) -> str | None:
    """Print the answer as it arrives; its text, or None after an error event."""
    text = ""
    async with session.post(url, json=body) as response:
        async for raw in response.content:
            line = raw.decode("utf-8").rstrip("\n")
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event["type"] == "content":
                text += event["text"]
                print(event["text"], end="", file=out, flush=True)
            elif event["type"] == "done":
                print(file=out)
                print(f"[model: {event['model']}]", file=err)
                return text
            else:
                print(f"\nerror: {event['error']}", file=err)
                return None
    print("\nerror: the stream ended without a done or error event", file=err)
    return None


def run_chat(prompt: str | None, model: str | None, system: str | None, max_tokens: int) -> int:
    return asyncio.run(chat(prompt, model, system, max_tokens))
