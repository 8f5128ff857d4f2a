// Reads the gateway's UI message stream (`?format=ui`) exactly as `useChat` does: the AI
// SDK's own DefaultChatTransport sends useChat's body and parses every chunk against the
// SDK's uiMessageChunkSchema; readUIMessageStream builds the assistant message from them.
//   node ui-stream-check.mjs http://localhost:8080 "a question"
// Prints {"messageId", "text", "metadata", "chunks", "errors"} as JSON (`chunks`: the
// chunk types in order); exits 1 when the SDK reported an error. AI_GATEWAY_KEY: a tenant key.
import { DefaultChatTransport, readUIMessageStream } from "ai";

const [gateway, question] = process.argv.slice(2);
const key = process.env.AI_GATEWAY_KEY;
const transport = new DefaultChatTransport({
  api: `${gateway}/ai/stream/chat?format=ui`,
  headers: key ? { Authorization: `Bearer ${key}` } : undefined,
});

const chunks = [];
const errors = [];
let message;
try {
  const stream = await transport.sendMessages({
    chatId: "ui-stream-check",
    trigger: "submit-message",
    messageId: undefined,
    abortSignal: undefined,
    messages: [{ id: "question-1", role: "user", parts: [{ type: "text", text: question }] }],
  });
  const recorded = stream.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        chunks.push(chunk.type);
        controller.enqueue(chunk);
      },
    }),
  );
  const onError = (error) => errors.push(error.message);
  for await (const snapshot of readUIMessageStream({ stream: recorded, onError })) {
    message = snapshot;
  }
} catch (error) {
  errors.push(error.message); // an error status: the transport throws with the body's text
}

const text = (message?.parts ?? [])
  .filter((part) => part.type === "text")
  .map((part) => part.text)
  .join("");
console.log(
  JSON.stringify({ messageId: message?.id, text, metadata: message?.metadata, chunks, errors }),
);
process.exitCode = errors.length > 0 ? 1 : 0;
