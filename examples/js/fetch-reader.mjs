// The integration guide's fetch() reader, corrected: a network chunk may end in the
// middle of an event, so bytes are buffered until a blank line ends each SSE frame
// (the guide's version JSON-parses half lines and throws).  Works in browsers and in
// Node 18+ (global fetch).
//
//   node examples/js/fetch-reader.mjs http://localhost:8080 "Write a haiku about coding"

export async function streamGenerate(baseUrl, prompt, { onText, apiKey, signal } = {}) {
  const headers = { "Content-Type": "application/json" };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  const response = await fetch(`${baseUrl}/ai/stream/generate`, {
    method: "POST",
    headers,
    body: JSON.stringify({ prompt, max_tokens: 500 }),
    signal,
  });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = frame
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n");
      if (!data) continue; // a ": keep-alive" comment
      const event = JSON.parse(data);
      if (event.type === "content") {
        text += event.text;
        onText?.(event.text);
      } else if (event.type === "done") {
        return { text, model: event.model, usage: event.usage };
      } else if (event.type === "error") {
        throw new Error(`${event.code ?? response.status}: ${event.error}`);
      }
    }
  }
  throw new Error("the stream ended without a done or error event");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [baseUrl = "http://localhost:8080", prompt = "Write a haiku about coding"] =
    process.argv.slice(2);
  try {
    const { model } = await streamGenerate(baseUrl, prompt, {
      apiKey: process.env.AI_GATEWAY_KEY,
      onText: (text) => process.stdout.write(text),
    });
    process.stdout.write(`\n[model: ${model}]\n`);
  } catch (error) {
    process.stderr.write(`\nerror: ${error.message}\n`);
    process.exit(1);
  }
}
