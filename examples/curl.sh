#!/usr/bin/env bash
# The integration guide's curl examples, against $AI_GATEWAY_URL (default localhost:8080).
# -N turns off curl's buffering so that events show as they arrive.
set -euo pipefail
URL="${AI_GATEWAY_URL:-http://localhost:8080}"
AUTH=()
[ -n "${AI_GATEWAY_KEY:-}" ] && AUTH=(-H "Authorization: Bearer ${AI_GATEWAY_KEY}")

curl -sS -N -X POST "$URL/ai/stream/generate" "${AUTH[@]}" \
  -H "Content-Type: application/json" \
  -d '{"prompt": "Write a haiku about coding", "max_tokens": 100, "temperature": 0.7}'

curl -sS -N -X POST "$URL/ai/stream/chat" "${AUTH[@]}" \
  -H "Content-Type: application/json" \
  -d '{"messages": [{"role": "user", "content": "What is FastAPI?"}], "max_tokens": 500}'

curl -sS "$URL/ai/stream/health"
echo
