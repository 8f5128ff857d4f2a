// A minimal chat on the gateway with the AI SDK's own `useChat` (AI SDK 5): its default
// transport speaks the UI message stream protocol, which the gateway streams with
// `?format=ui`, and posts useChat's body, which that endpoint reads.
import { useChat } from "@ai-sdk/react";
import { DefaultChatTransport, type UIMessage } from "ai";
import { useState } from "react";

// What the gateway puts in `messageMetadata` on its `finish` chunk (its `done` event).
type GatewayMetadata = {
  model?: string;
  stop_reason?: string;
  usage?: { input_tokens: number; output_tokens: number };
  request_id?: string;
};
type GatewayMessage = UIMessage<GatewayMetadata>;

const transport = new DefaultChatTransport<GatewayMessage>({
  api: "/ai/stream/chat?format=ui",
  // headers: { Authorization: `Bearer ${key}` },  // with auth.mode: api_key
});

// An error before the answer is the gateway's status with one error chunk as the body,
// `data: {"type":"error","errorText":...}`, which the transport throws as the message.
function errorText(error: Error): string {
  const data = /^data: (.*)$/m.exec(error.message)?.[1];
  try {
    const chunk = data ? (JSON.parse(data) as { errorText?: unknown }) : undefined;
    return typeof chunk?.errorText === "string" ? chunk.errorText : error.message;
  } catch {
    return error.message;
  }
}

export function Chat() {
  const { messages, sendMessage, status, error, stop } = useChat<GatewayMessage>({
    transport,
    // Resumable streams go here: `resume: true` (with a stable chat `id`) makes useChat GET
    // `/ai/stream/chat/<chat id>/stream?format=ui` on load to pick up an answer in flight
    // (or where the transport's `prepareReconnectToStreamRequest` points it).
  });
  const [input, setInput] = useState("");
  const busy = status === "submitted" || status === "streaming";

  return (
    <main>
      <ol data-testid="messages">
        {messages.map((message) => (
          <li key={message.id} data-testid="message" data-role={message.role}>
            <div data-testid="message-text">
              {message.parts.map((part, i) =>
                part.type === "text" ? <span key={i}>{part.text}</span> : null,
              )}
            </div>
            {message.metadata?.model && (
              <small data-testid="message-model">Model: {message.metadata.model}</small>
            )}
          </li>
        ))}
      </ol>
      <p data-testid="status">{status}</p>
      {error && <p data-testid="error">{errorText(error)}</p>}
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (!input.trim() || busy) return;
          void sendMessage({ text: input });
          setInput("");
        }}
      >
        <input
          data-testid="prompt"
          value={input}
          onChange={(event) => setInput(event.target.value)}
          placeholder="Ask something"
        />
        <button data-testid="send" type="submit" disabled={busy}>
          Send
        </button>
        <button data-testid="stop" type="button" onClick={() => void stop()} disabled={!busy}>
          Stop
        </button>
      </form>
    </main>
  );
}
