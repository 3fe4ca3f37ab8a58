#!/usr/bin/env bash
# The demo: one task through all five executors against the bundled emulator (no API keys).
set -euo pipefail

port_file=$(mktemp)
llm-exec-emulator --port 0 --port-file "$port_file" >/dev/null &
emulator_pid=$!
trap 'kill "$emulator_pid" 2>/dev/null || true; rm -f "$port_file"' EXIT

for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.05; done
url="http://127.0.0.1:$(cat "$port_file")"
echo "emulator listening on $url"

# Point each SDK at the emulator; the keys are dummies the emulator accepts.
export ANTHROPIC_BASE_URL="$url" ANTHROPIC_API_KEY=demo-key-anthropic
export OPENAI_BASE_URL="$url/v1" OPENAI_API_KEY=demo-key-openai
export GOOGLE_GEMINI_BASE_URL="$url" GOOGLE_API_KEY=demo-key-google
export OLLAMA_HOST="$url"
export LLM_EXEC_CUSTOM_ENDPOINT="$url/custom" LLM_EXEC_CUSTOM_API_KEY=demo-key-custom

task='{"task_id": "demo-1", "title": "Greeting", "description": "Say hello to the team.", "max_tokens": 40}'
for executor in claude gpt gemini custom llama; do
  echo
  echo "== llm-exec-$executor"
  status=0
  echo "$task" | "llm-exec-$executor" --pretty || status=$?
  echo "(exit code $status)"
done
