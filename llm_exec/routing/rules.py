"""Pure selection: (task, registry, catalog) -> Decision. No I/O, no processes, no clock.

The rules, in order (the README's "Selection" section is this list):

1. A pinned `agent` is that agent or nothing: unknown, disabled, lacking a required capability or
   over `max_cost_usd` -> no agent (exit 2). Complexity tiers do not apply to it; no failover.
2. Candidates are the enabled agents having ALL `required_capabilities`.
3. The complexity class (given, or estimated by `classify`) selects the registry's tier of model
   globs, if the registry configures one for that class; agents whose model is outside it drop.
4. Each agent's cost is estimated (prompt tokens from the rendered prompt, output tokens = the
   effective `max_tokens`); a known estimate above `max_cost_usd` drops the agent. An unknown
   cost never drops one.
5. Ranking: `preferred_types` first (in the order given), then for `complex` more capabilities
   first, for `simple`/`medium` cheapest first (unknown costs after known ones); ties keep
   registry order.
6. No candidate left: `default_agent` if it passes rule 2, else no agent, with every agent's reasons.

The catalog supplies what depends on the installed executors and price data (default models,
cost estimates), so these rules stay testable with a fake one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Protocol

from ..task import DEFAULT_MAX_TOKENS, TaskSpec, estimate_prompt_tokens, prompt_texts
from .registry import Agent, Registry

if TYPE_CHECKING:
    from ..aliases import Alias

# -- complexity ------------------------------------------------------------------------------

# Keyword stems, matched case-insensitively at the start of a word, each counted once; their points
# are capped (KEYWORD_CAP) so that vocabulary alone cannot decide the class.
COMPLEX_KEYWORDS = (
    "architect", "design", "refactor", "optimi", "prove", "proof", "security", "vulnerab", "concurren",
    "distributed", "migrat", "algorithm", "debug", "root cause", "trade-off", "tradeoff", "in-depth",
    "in depth", "step by step", "multi-step", "comprehensive", "analy",
)
SIMPLE_KEYWORDS = (
    "summari", "translate", "list", "classify", "extract", "rename", "reformat", "spell", "typo",
    "one line", "one sentence", "one word", "yes or no", "hello", "convert",
)
KEYWORD_CAP = 2
# Prompt-size thresholds in estimated tokens: below the first adds nothing, above the second adds 2.
SIZE_THRESHOLDS = (300, 2000)
MANY_ITEMS = 3  # deliverables, success criteria or required capabilities that make a task bigger
MANY_TURNS = 5  # conversation messages that suggest a task in progress
# Score -> class: <= SIMPLE_MAX simple, >= COMPLEX_MIN complex, medium between.
SIMPLE_MAX = 0
COMPLEX_MIN = 3


@dataclass(frozen=True)
class Complexity:
    """The task's complexity class, and the score and signals it came from when estimated."""

    requested: str  # simple | medium | complex | auto
    level: str  # simple | medium | complex
    score: int | None  # None when the task gave the class
    signals: tuple[str, ...] = ()


def _keywords(text: str, words: Sequence[str]) -> list[str]:
    lowered = text.lower()
    # The substring test first: most keywords are absent, and compiling each word's pattern (a new
    # process has an empty regex cache) would cost milliseconds for nothing.
    return [word for word in words if word in lowered and re.search(r"(?<![a-z0-9])" + re.escape(word), lowered)]


def classify(task: TaskSpec, prompt_tokens: int) -> Complexity:
    """The task's complexity class: as given, or estimated from documented signals when `auto`."""
    requested = task.get("complexity", "auto")
    if requested != "auto":
        return Complexity(requested, requested, None, ("given by the task",))
    score = 0
    signals: list[str] = []
    low, high = SIZE_THRESHOLDS
    size_points = 0 if prompt_tokens < low else 1 if prompt_tokens <= high else 2
    score += size_points
    signals.append(f"prompt ~{prompt_tokens} tokens: +{size_points}")
    for key, label in (("deliverables", "deliverables"), ("success_criteria", "success criteria"),
                       ("required_capabilities", "required capabilities")):
        count = len(task.get(key) or ())
        if count >= MANY_ITEMS:
            score += 1
            signals.append(f"{count} {label}: +1")
    turns = len(task.get("messages") or ())
    if turns >= MANY_TURNS:
        score += 1
        signals.append(f"{turns} messages: +1")
    text = "\n".join(prompt_texts(task))
    hard = _keywords(text, COMPLEX_KEYWORDS)
    if hard:
        points = min(KEYWORD_CAP, len(hard))
        score += points
        signals.append(f"complex keywords {hard}: +{points}")
    easy = _keywords(text, SIMPLE_KEYWORDS)
    if easy:
        points = min(KEYWORD_CAP, len(easy))
        score -= points
        signals.append(f"simple keywords {easy}: -{points}")
    level = "simple" if score <= SIMPLE_MAX else "complex" if score >= COMPLEX_MIN else "medium"
    return Complexity("auto", level, score, tuple(signals))


# -- cost ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostEstimate:
    """An agent's estimated cost for the task, with the per-1M prices it used and their source."""

    usd: float | None  # None = unknown
    input_per_mtok: float | None = None
    output_per_mtok: float | None = None
    source: str | None = None  # "registry" | "genai-prices"
    note: str | None = None  # why the cost is unknown

    def price_dict(self) -> dict[str, Any] | None:
        if self.input_per_mtok is None or self.output_per_mtok is None:
            return None
        return {"input": self.input_per_mtok, "output": self.output_per_mtok, "source": self.source}


class Catalog(Protocol):
    """What the rules need to know beyond the registry."""

    def default_model(self, executor: str) -> str: ...

    def estimate(self, agent: Agent, model: str, input_tokens: int, output_tokens: int) -> CostEstimate: ...

    def circuit_wait(self, agent: Agent, model: str, api_endpoint: str | None) -> float | None:
        """Seconds until the agent's circuit breaker lets a call through; None when it is closed."""
        ...

    def deprecation(self, agent: Agent, model: str) -> dict[str, Any] | None:
        """What the provider (or genai-prices) says of the model going away, as a result's
        `model_deprecated` warning; None when nothing does."""
        ...


CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"


def context_skip_reason(agent: Agent, floor: int) -> str | None:
    """Why `agent` is not tried after a prompt did not fit a context window of `floor` tokens;
    None when its window is known to be larger. An agent without a context_window is not tried:
    nothing says it is larger, and the same prompt would most likely be refused again."""
    if agent.context_window is None:
        return "no context_window in the registry (not known to be larger)"
    if agent.context_window <= floor:
        return f"context_window {agent.context_window} is not larger than {floor}"
    return None


def usd(value: float) -> str:
    return f"${value:.6g}"


# -- the decision ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """One agent as the rules saw it: model, output tokens, cost, and why it was rejected."""

    agent: Agent
    model: str
    output_tokens: int
    cost: CostEstimate
    reasons: tuple[str, ...]  # why it was rejected; empty = kept
    deprecation: dict[str, Any] | None = None  # a model_deprecated warning (kept agents only)

    @property
    def kept(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class Decision:
    """Every agent's evaluation, the ranking and the rule that made it (or why none qualifies)."""

    registry: Registry
    complexity: Complexity
    prompt_tokens: int
    evaluations: tuple[Evaluation, ...]
    ranking: tuple[str, ...]
    rule: str
    pinned: str | None
    fallback: bool
    max_cost_usd: float | None
    used_default_agent: bool = False
    error_type: str | None = None
    error: str | None = None

    @property
    def chosen(self) -> str | None:
        return self.ranking[0] if self.ranking else None

    @property
    def failover(self) -> tuple[str, ...]:
        """The attempt order: the ranking, or only the first when failover is off (pin / fallback false)."""
        return self.ranking if self.fallback and not self.pinned else self.ranking[:1]

    def evaluation(self, name: str) -> Evaluation:
        return next(e for e in self.evaluations if e.agent.name == name)

    def context_failover(self) -> dict[str, list[str]]:
        """For each agent of the failover order, the later ones tried should it answer
        context_length_exceeded: those with a known, larger context_window; none when its own
        window is unknown (nothing can be said to be larger)."""
        order = [self.evaluation(name).agent for name in self.failover]
        out: dict[str, list[str]] = {}
        for index, agent in enumerate(order):
            floor = agent.context_window
            out[agent.name] = [] if floor is None else [
                later.name for later in order[index + 1:] if context_skip_reason(later, floor) is None]
        return out

    def explain(self, task: TaskSpec) -> dict[str, Any]:
        tier = self.registry.complexity_tiers.get(self.complexity.level)
        body: dict[str, Any] = {
            "task_id": task.task_id,
            "registry": self.registry.path,
            "complexity": {"requested": self.complexity.requested, "class": self.complexity.level,
                           "score": self.complexity.score, "signals": list(self.complexity.signals)},
            "tier": list(tier) if tier is not None else None,
            "required_capabilities": list(task.get("required_capabilities", ())),
            "preferred_types": list(task.get("preferred_types", ())),
            "max_cost_usd": self.max_cost_usd,
            "pinned": self.pinned,
            "fallback": self.fallback,
            "estimated_prompt_tokens": self.prompt_tokens,
            "rule": self.rule,
            "agents": [self._agent_dict(e) for e in self.evaluations],
            "ranking": list(self.ranking),
            "chosen": self.chosen,
            "used_default_agent": self.used_default_agent,
            "failover": list(self.failover),
            # On context_length_exceeded, the agents each one would fail over to (see context_skip_reason).
            "context_failover": self.context_failover(),
        }
        going = [e for e in self.evaluations if e.kept and e.deprecation]
        if going:
            body["deprecated_models"] = [
                f"{e.agent.name}: {e.deprecation['message']}: ranked after the agents of equal rank" for e in going]
        if self.error:
            body["error"] = {"type": self.error_type, "message": self.error}
        return body

    def _agent_dict(self, e: Evaluation) -> dict[str, Any]:
        from .catalog import program  # deferred: catalog imports this module

        agent = e.agent
        note = e.cost.note
        if e.cost.usd is None and self.max_cost_usd is not None:
            note = f"{note}; " if note else ""
            note += "unknown cost: never dropped by max_cost_usd, ranked after known costs"
        return {
            "name": agent.name,
            "type": agent.type,
            "executor": program(agent.executor),
            "model": e.model,
            "capabilities": list(agent.capabilities),
            "enabled": agent.enabled,
            "kept": e.kept,
            "reasons": list(e.reasons),
            "estimated_prompt_tokens": self.prompt_tokens,
            "estimated_output_tokens": e.output_tokens,
            "estimated_cost_usd": e.cost.usd,
            "price_per_mtok": e.cost.price_dict(),
            "cost_note": note,
            "context_window": agent.context_window,
            "deprecated": e.deprecation,  # ranked after agents of equal rank when set
            "metadata": dict(agent.metadata),
        }


def decide(task: TaskSpec, registry: Registry, catalog: Catalog, *, alias: Alias | None = None) -> Decision:
    """`alias`: the model alias the task's model was resolved from (llm-route replaced the model
    already); when it names a provider, only that provider's agents qualify."""
    prompt_tokens = estimate_prompt_tokens(task)
    complexity = classify(task, prompt_tokens)
    required = tuple(task.get("required_capabilities", ()))
    max_cost = task.get("max_cost_usd")
    pinned = task.get("agent")
    tier = registry.complexity_tiers.get(complexity.level)
    hard: dict[str, list[str]] = {}  # reasons that also disqualify default_agent
    evaluations = []
    for agent in registry.agents:
        model = task.get("model") or agent.model or catalog.default_model(agent.executor)
        output_tokens = int(task.get("max_tokens") or agent.max_tokens or DEFAULT_MAX_TOKENS)
        cost = catalog.estimate(agent, model, prompt_tokens, output_tokens)
        reasons = hard.setdefault(agent.name, [])
        if pinned is not None and agent.name != pinned:
            reasons.append(f"the task pins agent {pinned!r}")
        if not agent.enabled:
            reasons.append("disabled")
        elif (wait := catalog.circuit_wait(agent, model, task.get("api_endpoint") or agent.api_endpoint)) is not None:
            reasons.append(f"circuit open: recent calls to its provider failed (next probe in {wait:.0f} s)")
        missing = [c for c in required if c not in agent.capabilities]
        if missing:
            reasons.append(f"missing capabilities: {', '.join(missing)}")
        if alias is not None and alias.provider is not None and _provider_name(alias.provider) != agent.executor:
            reasons.append(f"model alias {alias.name!r} is for provider {alias.provider}")
        soft = []
        if tier is not None and pinned is None and not any(fnmatchcase(model, glob) for glob in tier):
            soft.append(f"model {model!r} is not in the {complexity.level} tier ({', '.join(tier)})")
        if max_cost is not None and cost.usd is not None and cost.usd > max_cost:
            soft.append(f"estimated cost {usd(cost.usd)} exceeds max_cost_usd {usd(max_cost)}")
        evaluations.append(Evaluation(agent, model, output_tokens, cost, tuple(reasons + soft)))

    rule = "versatility first" if complexity.level == "complex" else "cheapest first"
    # Deprecation only breaks ties, so it is asked of the kept agents only (the provider's answer may
    # import its module): a local note (the registry's `deprecated:`) wins over the provider's.
    evaluations = [e if not e.kept else replace(e, deprecation=_deprecation(e, registry, catalog))
                   for e in evaluations]
    kept = [e for e in evaluations if e.kept]
    ranked = sorted(kept, key=lambda e: _rank_key(e, task.get("preferred_types", ()), complexity.level))
    decision = Decision(
        registry=registry, complexity=complexity, prompt_tokens=prompt_tokens, evaluations=tuple(evaluations),
        ranking=tuple(e.agent.name for e in ranked), rule=rule, pinned=pinned,
        fallback=bool(task.get("fallback", True)), max_cost_usd=max_cost,
    )
    if ranked:
        return decision
    return _no_candidate(decision, hard)


def _rank_key(e: Evaluation, preferred: Sequence[str], level: str) -> tuple[Any, ...]:
    preference = preferred.index(e.agent.type) if e.agent.type in preferred else len(preferred)
    deprecated = 0 if e.deprecation is None else 1  # at equal rank, a model that is going away comes last
    if level == "complex":
        return (preference, -len(e.agent.capabilities), deprecated, e.agent.index)
    known = e.cost.usd is not None
    return (preference, 0 if known else 1, e.cost.usd if known else 0.0, deprecated, e.agent.index)


def _deprecation(e: Evaluation, registry: Registry, catalog: Catalog) -> dict[str, Any] | None:
    note = registry.aliases.note_for(e.model)
    found = getattr(catalog, "deprecation", None)
    if note is not None:
        from ..models import deprecation_warning

        return deprecation_warning(e.model, note, None)
    return found(e.agent, e.model) if found is not None else None


def _provider_name(name: str) -> str:
    from ..providers.registry import find_entry

    return find_entry(name).name


def _no_candidate(decision: Decision, hard: Mapping[str, list[str]]) -> Decision:
    registry = decision.registry
    if decision.pinned is not None:
        agent = registry.get(decision.pinned)
        if agent is None:
            known = ", ".join(a.name for a in registry.agents)
            message = f"the task pins agent {decision.pinned!r}, which is not in the registry (agents: {known})"
            return _with_error(decision, "unknown_agent", message)
        reasons = "; ".join(decision.evaluation(agent.name).reasons)
        return _with_error(decision, "no_agent", f"pinned agent {agent.name!r} cannot run this task: {reasons}")
    default = registry.default_agent
    if default is not None and not hard.get(default):
        return replace(decision, ranking=(default,), used_default_agent=True)
    lines = [f"{e.agent.name}: {'; '.join(e.reasons)}" for e in decision.evaluations]
    message = "no agent qualifies for this task: " + " | ".join(lines)
    if default is not None:
        message += f" (default_agent {default!r} does not qualify: {'; '.join(hard[default])})"
    return _with_error(decision, "no_agent", message)


def _with_error(decision: Decision, error_type: str, message: str) -> Decision:
    return replace(decision, error_type=error_type, error=message)
