// A minimal chat on the gateway with the AI SDK's own `useChat` (AI SDK 5): its default
// transport speaks the UI message stream protocol, which the gateway streams with
// `?format=ui`, and posts useChat's body, which that endpoint reads.  With the gateway's
// `resume.enabled`, a reload picks up the answer in flight (`resume: true` below).
import { useChat } from "@ai-sdk/react";
import { DefaultChatTransport, generateId, type UIMessage } from "ai";
import { useState } from "react";

// What the gateway puts in `messageMetadata` on its `finish` chunk (its `done` event).
type GatewayMetadata = {
  model?: string;
  stop_reason?: string;
  usage?: { input_tokens: number; output_tokens: number };
  request_id?: string;
};
type GatewayMessage = UIMessage<GatewayMetadata>;

// The chat's id is in the page's URL (`?chat=<id>`, added when missing), so that the page
// reloaded finds its chat again.
function chatIdOfPage(): string {
  const url = new URL(window.location.href);
  const id = url.searchParams.get("chat") ?? generateId();
  url.searchParams.set("chat", id);
  window.history.replaceState(null, "", url);
  return id;
}
const chatId = chatIdOfPage();

// The stream in flight (its X-Stream-ID, with resume.enabled), for Stop to end it upstream:
// with resume, a client that goes away no longer does.
let streamId: string | null = null;

const transport = new DefaultChatTransport<GatewayMessage>({
  api: "/ai/stream/chat?format=ui",
  // headers: { Authorization: `Bearer ${key}` },  // with auth.mode: api_key
  fetch: async (input, init) => {
    const response = await fetch(input, init);
    streamId = response.headers.get("X-Stream-ID");
    return response;
  },
});

function stopUpstream() {
  if (!streamId) return;
  // (with auth.mode: api_key, the transport's headers too)
  void fetch(`/ai/stream/resume/${encodeURIComponent(streamId)}`, { method: "DELETE" });
}

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
    id: chatId,
    // On load, GET /ai/stream/chat/<chat id>/stream?format=ui: the chat's answer still
    // streaming, from its start, or a 204 when there is none.
    resume: true,
    transport,
  });
  const [input, setInput] = useState("");
  const busy = status === "submitted" || status === "streaming";
  const stopAnswer = () => {
    stopUpstream();
    void stop();
  };

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
        <button data-testid="stop" type="button" onClick={stopAnswer} disabled={!busy}>
          Stop
        </button>
      </form>
    </main>
  );
}
