// One streaming call through the gateway with an official JavaScript SDK, as an app makes
// it: only the base URL and the key change.
//   node sdk-stream.mjs anthropic|openai http://localhost:8080 <tenant key> "a question"
// Prints the text as it arrives, then the model that answered on stderr.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const [kind, gateway, apiKey, question] = process.argv.slice(2);
const messages = [{ role: "user", content: question }];

if (kind === "anthropic") {
  const client = new Anthropic({ baseURL: gateway, apiKey, maxRetries: 0 });
  const stream = client.messages.stream({ model: "sonnet", max_tokens: 200, messages });
  stream.on("text", (text) => process.stdout.write(text));
  const message = await stream.finalMessage();
  console.error(`[model: ${message.model}, stop: ${message.stop_reason}]`);
} else {
  const client = new OpenAI({ baseURL: `${gateway}/v1`, apiKey, maxRetries: 0 });
  const stream = await client.chat.completions.create({ model: "sonnet", messages, stream: true });
  let model = "";
  for await (const chunk of stream) {
    model = chunk.model;
    process.stdout.write(chunk.choices[0]?.delta?.content ?? "");
  }
  console.error(`[model: ${model}]`);
}
