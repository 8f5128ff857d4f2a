// Reads the gateway's SSE events from a fetch() body.  A chunk may end anywhere inside an
// event, so text is buffered until a blank line ends each frame.

export type GatewayEvent =
  | { type: "content"; text: string }
  | { type: "done"; model: string; usage?: { input_tokens: number; output_tokens: number } }
  | { type: "error"; error: string; code?: string };

export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<GatewayEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end: number;
      while ((end = buffer.indexOf("\n\n")) !== -1) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (data) yield JSON.parse(data) as GatewayEvent;
      }
    }
  } finally {
    reader.releaseLock();
  }
}
