"use client";
// The guide's React component, corrected: it buffers across chunks (lib/sse.ts), shows
// errors and the serving model, and can stop a stream.  Pair it with app/api/chat/route.ts.

import { useRef, useState } from "react";
import { sseEvents } from "../lib/sse";

export default function StreamingChat() {
  const [input, setInput] = useState("");
  const [response, setResponse] = useState("");
  const [status, setStatus] = useState("");
  const controller = useRef<AbortController | null>(null);

  async function handleStream() {
    setResponse("");
    setStatus("Streaming…");
    controller.current = new AbortController();
    try {
      const res = await fetch("/api/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: input }] }),
        signal: controller.current.signal,
      });
      if (!res.body) throw new Error(`HTTP ${res.status}`);
      for await (const event of sseEvents(res.body)) {
        if (event.type === "content") setResponse((prev) => prev + event.text);
        else if (event.type === "done") setStatus(`Done · ${event.model}`);
        else setStatus(`Error: ${event.error}`);
      }
    } catch (error) {
      setStatus(error instanceof Error && error.name === "AbortError" ? "Stopped" : String(error));
    } finally {
      controller.current = null;
    }
  }

  return (
    <div className="p-4">
      <textarea value={input} onChange={(e) => setInput(e.target.value)} placeholder="Ask Claude anything…" />
      <button onClick={handleStream} disabled={controller.current !== null}>Send</button>
      <button onClick={() => controller.current?.abort()}>Stop</button>
      <div className="whitespace-pre-wrap">{response || "Response will appear here…"}</div>
      <small>{status}</small>
    </div>
  );
}
