// Calls the compiled Next.js route handler the way Next.js would, with a web Request,
// and prints the gateway events read from its Response as JSON (used by the tests).
import { POST } from "./build/app/api/chat/route.js";
import { sseEvents } from "./build/lib/sse.js";

const request = new Request("http://localhost/api/chat", {
  method: "POST",
  body: JSON.stringify({ messages: [{ role: "user", content: process.argv[2] ?? "hello" }] }),
});
const response = await POST(request);
const events = [];
for await (const event of sseEvents(response.body)) events.push(event);
console.log(JSON.stringify({ status: response.status, type: response.headers.get("content-type"), events }));
