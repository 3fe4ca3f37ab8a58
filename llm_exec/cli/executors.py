"""Console-script entry points, one per executor (see pyproject.toml [project.scripts])."""

from __future__ import annotations

from .command import main


def claude() -> None:
    main("claude", "llm-exec-claude")


def gpt() -> None:
    main("gpt", "llm-exec-gpt")


def gemini() -> None:
    main("gemini", "llm-exec-gemini")


def custom() -> None:
    main("custom", "llm-exec-custom")


def llama() -> None:
    main("llama", "llm-exec-llama")
