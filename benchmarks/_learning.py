"""Scenario (f): learning on the simulator fleet, regret against an oracle.

The built-in simulator fleet (``kind = "sim"``: fast, balanced, smart, flaky,
refuser) has hidden per-intent quality, latency, cost and failure rates in its
``SimProfile``s. The router never reads them: it sees outcomes and, for
switchman's own policy, feedback ``router.feedback(call_id, score)`` with
score = hidden quality of the answering model for the intent + N(0, 0.1),
clipped to 0..1.

Each policy makes ``calls`` calls with intents drawn uniformly (seeded, the
same sequence for every policy), all through the router on the simulator:

- switchman: ``model="auto"``, learning from outcomes and feedback;
- oracle: the model with the best expected reward for the intent;
- fixed: one model for every call: the best over all intents in hindsight,
  and ``sim/balanced``, the head of most built-in routes;
- round-robin: the models in turn.

Expected reward of a model for an intent = hidden quality x probability that
it answers at all (1 - error, rate-limit, refusal, stall and cut rates).
Regret per call = oracle's expected reward - expected reward of the model the
policy tried first; the table shows it summed over the calls. switchman's
ranking also weighs cost, latency and trust tier on purpose, so part of its
regret against this quality-only oracle is a trade-off, not a mistake; the
table shows mean cost and latency beside it.

Simulated latencies pass on trio's ``MockClock`` (autojump), so 2,000 calls of
a fleet whose answers take seconds run in seconds. Calls arrive one every
``ARRIVAL_S`` virtual seconds (a call that fails at once must not see the clock
stand still, or a provider's 1-second rate-limit pause would never end).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping
from typing import Any, Final

import trio
import trio.testing

import switchman
from benchmarks._suite import Context, Section
from benchmarks._util import markdown_table
from switchman._call import Intent
from switchman.catalog import ModelSpec

INTENTS: Final[tuple[Intent, ...]] = (
    "lookup",
    "summarize",
    "extract",
    "compare",
    "draft",
    "classify",
    "reason",
    "critique",
    "translate",
    "code",
)
NOISE_SD: Final = 0.1
ARRIVAL_S: Final = 1.0
DEFAULT_FIXED: Final = "sim/balanced"
PROMPT = "A question the simulator will answer."


def quality(model: ModelSpec, intent: str) -> float:
    assert model.sim is not None
    return float(model.sim.quality.get(intent, model.sim.default_quality))


def answer_rate(model: ModelSpec) -> float:
    s = model.sim
    assert s is not None
    failing = s.error_rate + s.rate_limit_rate + s.refusal_rate + s.stall_rate + s.cut_rate
    return max(0.0, 1.0 - failing)


def expected_reward(model: ModelSpec, intent: str) -> float:
    return quality(model, intent) * answer_rate(model)


def sim_fleet(config: switchman.Config) -> dict[str, ModelSpec]:
    """The enabled simulator models of ``config`` by alias."""
    return {
        alias: m
        for alias, m in config.models.items()
        if m.sim is not None
        and m.provider in config.providers
        and config.providers[m.provider].disabled_reason is None
    }


def fleet_config() -> switchman.Config:
    """The built-in catalog with no API keys: the simulator fleet is what serves."""
    return switchman.load_config(None, env={})


Policy = Callable[[int, Intent], str]


def policies(fleet: Mapping[str, ModelSpec]) -> dict[str, Policy]:
    aliases = sorted(fleet)
    oracle = {i: max(aliases, key=lambda a: expected_reward(fleet[a], i)) for i in INTENTS}
    fixed = max(aliases, key=lambda a: sum(expected_reward(fleet[a], i) for i in INTENTS))
    out: dict[str, Policy] = {
        "switchman (auto + feedback)": lambda n, intent: "auto",
        "oracle": lambda n, intent: oracle[intent],
        f"fixed ({fixed}, best in hindsight)": lambda n, intent: fixed,
    }
    if DEFAULT_FIXED in fleet and fixed != DEFAULT_FIXED:
        out[f"fixed ({DEFAULT_FIXED})"] = lambda n, intent: DEFAULT_FIXED
    out["round-robin"] = lambda n, intent: aliases[n % len(aliases)]
    return out


async def run_policy(
    config: switchman.Config,
    fleet: Mapping[str, ModelSpec],
    policy: Policy,
    intents: list[Intent],
    *,
    feedback: bool,
    seed: int = 11,
) -> dict[str, Any]:
    """Make one call per intent with ``policy``; the per-call regret curve and totals."""
    rng = random.Random(seed)
    best = {i: max(expected_reward(m, i) for m in fleet.values()) for i in INTENTS}
    regret: list[float] = []
    realised = 0.0
    complete = 0
    cost = 0.0
    latency = 0.0
    chosen: dict[str, int] = {}
    async with switchman.open_router(config, env={}) as router:
        for n, intent in enumerate(intents):
            await trio.sleep(ARRIVAL_S)
            call = switchman.Call(prompt=PROMPT, model=policy(n, intent), intent=intent)
            result = await router.call(call)
            first = result.trace.attempts[0].alias if result.trace.attempts else ""
            if first:
                chosen[first] = chosen.get(first, 0) + 1
            tried = expected_reward(fleet[first], intent) if first in fleet else 0.0
            regret.append(best[intent] - tried)
            cost += result.cost_usd
            latency += result.latency_ms
            answered = result.model or ""
            if result.status == "complete" and answered in fleet:
                complete += 1
                q = quality(fleet[answered], intent)
                realised += q
                if feedback:
                    score = min(1.0, max(0.0, q + rng.gauss(0.0, NOISE_SD)))
                    await router.feedback(result.call_id, score)
    cumulative = []
    total = 0.0
    for r in regret:
        total += r
        cumulative.append(total)
    calls = len(intents)
    return {
        "calls": calls,
        "cumulative_regret": cumulative,
        "total_regret": total,
        "regret_last_quarter_per_call": sum(regret[-max(1, calls // 4) :]) / max(1, calls // 4),
        "success_rate": complete / calls if calls else float("nan"),
        "mean_quality": realised / calls if calls else float("nan"),
        "mean_cost_usd": cost / calls if calls else float("nan"),
        "mean_latency_ms": latency / calls if calls else float("nan"),
        "first_choice": dict(sorted(chosen.items())),
    }


def measure(calls: int, *, seed: int = 3) -> dict[str, Any]:
    """Every policy over the same ``calls`` intents, each in its own MockClock run."""
    config = fleet_config()
    fleet = sim_fleet(config)
    rng = random.Random(seed)
    intents = [rng.choice(INTENTS) for _ in range(calls)]
    out: dict[str, Any] = {}
    for name, policy in policies(fleet).items():
        clock = trio.testing.MockClock(autojump_threshold=0)
        run_one = functools.partial(
            run_policy, config, fleet, policy, intents, feedback=name.startswith("switchman")
        )
        out[name] = trio.run(run_one, clock=clock)
        print(
            f"    {name:<28} regret {out[name]['total_regret']:8.1f}  "
            f"quality {out[name]['mean_quality']:.3f}",
            flush=True,
        )
    return {
        "policies": out,
        "hidden": {
            alias: {
                "answer_rate": answer_rate(m),
                "expected_reward": {i: expected_reward(m, i) for i in INTENTS},
            }
            for alias, m in fleet.items()
        },
    }


def run(ctx: Context) -> Section:
    data = measure(ctx.profile.learning_calls)
    return Section(key="learning", title="(f) Learning", markdown=render(data), data=data)


def render(data: dict[str, Any]) -> str:
    headers = [
        "policy",
        "total regret",
        "regret/call, last quarter",
        "success",
        "mean quality",
        "mean cost $",
        "mean latency ms",
    ]
    rows = [
        [
            name,
            r["total_regret"],
            r["regret_last_quarter_per_call"],
            f"{r['success_rate']:.1%}",
            r["mean_quality"],
            r["mean_cost_usd"],
            r["mean_latency_ms"],
        ]
        for name, r in data["policies"].items()
    ]
    first = data["policies"].get("switchman (auto + feedback)", {}).get("first_choice", {})
    picks = ", ".join(f"{k} {v}" for k, v in first.items())
    return markdown_table(headers, rows) + (
        f"\n\nswitchman's first choices: {picks}." if picks else ""
    )
