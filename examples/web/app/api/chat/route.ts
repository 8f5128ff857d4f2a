// Next.js (App Router) route handler that proxies the gateway's stream to the browser.
// The guide's `StreamingTextResponse` was removed from the `ai` package; a plain Response
// passes the body through unchanged, event by event.  `req.signal` cancels the gateway
// request (and so the model call) when the browser goes away.

const GATEWAY_URL = process.env.AI_GATEWAY_URL ?? "http://localhost:8080";

export async function POST(req: Request): Promise<Response> {
  const { messages } = (await req.json()) as { messages: { role: string; content: string }[] };
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (process.env.AI_GATEWAY_KEY) headers.Authorization = `Bearer ${process.env.AI_GATEWAY_KEY}`;
  const upstream = await fetch(`${GATEWAY_URL}/ai/stream/chat`, {
    method: "POST",
    headers,
    body: JSON.stringify({ messages, max_tokens: 2048, temperature: 0.7 }),
    signal: req.signal,
  });
  return new Response(upstream.body, {
    status: upstream.status,
    headers: {
      "Content-Type": upstream.headers.get("Content-Type") ?? "text/event-stream; charset=utf-8",
      "Cache-Control": "no-cache",
      "X-Accel-Buffering": "no",
    },
  });
}
