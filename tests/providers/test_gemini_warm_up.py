"""GeminiLlm builds google-genai's response models while its request is out (gemini._build_response_models),
so that the first streamed chunk is not the one that waits for pydantic to build them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from google.genai import types

from llm_exec.providers.gemini import _nested_models, _response_models
from tests.conftest import REPO_ROOT, shared_fixtures


def test_response_models_are_listed_children_first() -> None:
    order = _response_models()
    assert order[-1] is types.GenerateContentResponse
    assert len(order) == len(set(order))
    position = {model: index for index, model in enumerate(order)}
    for model in order:
        for field in model.model_fields.values():
            for nested in _nested_models(field.annotation):
                # A nested model left out is built within its parent; one listed must come first.
                assert position.get(nested, -1) < position[model], (nested.__name__, model.__name__)


def test_the_list_holds_what_parsing_a_text_chunk_builds() -> None:
    names = {model.__name__ for model in _response_models()}
    assert {"Candidate", "Content", "Part", "GenerateContentResponseUsageMetadata", "ModalityTokenCount",
            "HttpResponse"} <= names


# In a process of its own: models built by other tests would hide what the call builds itself.
_CALL_AFTER_WARM_UP = """
import asyncio, sys
from pathlib import Path
from google.genai import types
from llm_exec.emulator import Emulator
from llm_exec.providers.gemini import GeminiLlm, _build_response_models, _nested_models
from llm_exec.request import LlmRequest, Message

def every_response_model():
    seen, todo = set(), [types.GenerateContentResponse]
    while todo:
        model = todo.pop()
        if model not in seen:
            seen.add(model)
            todo.extend(n for f in model.model_fields.values() for n in _nested_models(f.annotation))
    return seen

def built():
    return {model.__name__ for model in every_response_model() if model.__pydantic_complete__}

async def call(url, model):
    llm = GeminiLlm(api_key="test-key", base_url=url)
    request = LlmRequest(messages=(Message("user", "hi"),), model=model, stream=True)
    try:
        return [item async for item in llm.stream(request)]
    finally:
        await llm.aclose()

fixtures, name, model = sys.argv[1:]
assert not types.GenerateContentResponse.__pydantic_complete__, "built before the warm-up: nothing to test"
asyncio.run(_build_response_models())
warm = built()
with Emulator(fixtures_dir=Path(fixtures)) as emulator:
    emulator.script([{"fixture": name}])
    items = asyncio.run(call(emulator.url, model))
assert len(items) > 2, items
print(sorted(built() - warm))
"""


def test_after_the_warm_up_a_streamed_text_answer_builds_no_response_model() -> None:
    for name, model in (("gemini/stream-sse-basic-2.0-flash.json", "gemini-2.0-flash"),
                        ("gemini/stream-sse-thinking-3.5-flash.json", "gemini-3.5-flash")):
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(_CALL_AFTER_WARM_UP), str(shared_fixtures()),
                              name, model], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "[]", f"{name}: the call itself still built {out.stdout.strip()}"
