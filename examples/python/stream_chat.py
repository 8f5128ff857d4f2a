"""Stream a chat answer from the gateway with nothing but the standard library.

    python examples/python/stream_chat.py http://localhost:8080 "What is FastAPI?"

Reads the SSE body line by line: `data: <json>` lines carry the events, blank lines end
them, lines starting with ":" are keep-alive comments.  Set AI_GATEWAY_KEY when the
gateway requires a key.  Exits 1 on an error event.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request


def stream_chat(base_url: str, prompt: str) -> int:
    body = json.dumps({"messages": [{"role": "user", "content": prompt}], "max_tokens": 500})
    request = urllib.request.Request(
        f"{base_url}/ai/stream/chat",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if os.environ.get("AI_GATEWAY_KEY"):
        request.add_header("Authorization", f"Bearer {os.environ['AI_GATEWAY_KEY']}")
    try:
        response = urllib.request.urlopen(request, timeout=600)
    except urllib.error.HTTPError as error:
        response = error  # errors before the stream still carry one SSE error frame
    with response:
        for raw in response:
            line = raw.decode("utf-8").rstrip("\n")
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event["type"] == "content":
                print(event["text"], end="", flush=True)
            elif event["type"] == "done":
                print(f"\n[model: {event['model']}]")
                return 0
            else:
                print(f"\nerror: {event['error']}", file=sys.stderr)
                return 1
    print("\nerror: the stream ended without a done or error event", file=sys.stderr)
    return 1


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8080"
    question = sys.argv[2] if len(sys.argv) > 2 else "What is FastAPI?"
    sys.exit(stream_chat(url, question))
