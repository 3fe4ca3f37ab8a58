"""LiteLLM one-shot: the call a user would script instead of spawning llm-exec-gpt (run by .bench-venv's python).

Usage: python litellm_oneshot.py API_BASE
"""

import json
import sys

import litellm

response = litellm.completion(model="openai/gpt-5.4-mini", api_base=sys.argv[1], api_key="bench-key-0123",
                              messages=[{"role": "user", "content": "Say hello"}], max_tokens=20)
print(json.dumps({"output": response.choices[0].message.content, "tokens_used": response.usage.total_tokens}))
