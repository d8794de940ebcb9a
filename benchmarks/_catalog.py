"""Scenario "catalog": what exploring the whole built-in catalog costs ``auto``.

``python -m benchmarks._catalog [--calls 600] [--seeds 1,2,3]`` alone, or
``python -m benchmarks --only catalog`` in the suite.

Every model of the built-in catalog (10 providers, ``benchmarks.overhead.whole_catalog_config``)
serves on the in-process simulator under its own provider name, as when every provider has a
key and an Ollama server has every catalog model pulled. The catalog gives its real models no
simulator profile (``sim`` is unset: they are real endpoints), so each gets the one
``whole_catalog_config`` gives: the default ``SimProfile()``, instant, never failing, the same
quality (0.7) for every intent. All models healthy and alike but for what the router knows
of them before trying one (price, trust, capabilities, context window): what is measured is
the cost of exploration itself, nothing a model did. (A uniform latency would change nothing
here: every model would show the same.)

Each policy makes ``calls`` summary calls (a fixed prompt of about 300 tokens, intent
``summarize``), one every virtual minute on trio's ``MockClock`` (autojump: ten hours of
calls run in seconds), per seed (``RouterConfig.seed``; the run is deterministic for a
seed):

- ``auto``: ``model="auto"``, the router's defaults (``exploration = 1``);
- ``auto, exploration = 0``: the same with ``[router] exploration = 0`` (the learned means,
  no draws);
- ``cheapest only``: always the cheapest eligible paid model, named: a check of the measure
  (its ratio is 1.0 by construction, or the reference is wrong).

The measure: for each call, what the cheapest **paid** eligible model would have cost for
the tokens that call used (``ModelSpec.cost`` of its input, output and cached-input tokens,
fee included; the minimum over the eligible models with a price). Cost ratio = the calls'
summed ``cost_usd`` / that summed reference, over the calls after the first ``skip`` (100),
and in blocks of ``block`` (100) calls after them. The catalog's Ollama models are free
(no price) and eligible: they are never the reference (a ratio to $0 means nothing), and a
call they answer counts at its $0 in the policy's cost, so a policy that sends calls to them
can read below 1.0; the table says how many calls they answered. Dearest tier: models at
``DEAR_OUTPUT_PER_MTOK`` ($25) or more a million output tokens; counted by each call's first
attempt.

The cheapest paid model may rank below a dearer one on the learned means alone: the ranking
weighs trust tier beside price (the catalog's cheapest paid model, like its Ollama models, is
``untrusted``). The ``exploration = 0`` row shows what that trade-off costs; what ``auto``
costs above it is exploration. The section runs in the suite's quick and full profiles at
600 calls x seeds 1, 2, 3 (seconds: the simulator answers at once and time is virtual), in
``--smoke`` at 60 calls, one seed.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs
import trio
import trio.testing

import switchman
from benchmarks._suite import Context, Section
from benchmarks._util import markdown_table
from benchmarks.overhead import whole_catalog_config
from switchman.catalog import Config, ModelSpec
from switchman.policy._eligibility import check_eligibility
from switchman.policy._estimate import estimate_input_tokens

#: a summary request of a few hundred tokens (about 300 by the router's estimate)
PROMPT: Final = (
    "Summarise the following notes for a weekly report in three sentences.\n\n"
    + " ".join(
        f"Item {n}: the harbour team logged tide heights, the berth schedule moved by an "
        "hour, two cranes were serviced and the night shift reported no incidents."
        for n in range(1, 9)
    )
)
INTENT: Final = "summarize"
ARRIVAL_S: Final = 60.0
DEAR_OUTPUT_PER_MTOK: Final = 25.0
DEFAULT_CALLS: Final = 600
DEFAULT_SEEDS: Final = (1, 2, 3)
SMOKE_CALLS: Final = 60
AUTO: Final = "auto"
AUTO_NO_EXPLORATION: Final = "auto, exploration = 0"


def catalog_config(seed: int, *, exploration: float | None = None) -> Config:
    """``whole_catalog_config`` with the router seeded (and ``exploration`` if given)."""
    config = whole_catalog_config()
    router = attrs.evolve(config.router, seed=seed)
    if exploration is not None:
        router = attrs.evolve(router, exploration=exploration)
    return attrs.evolve(config, router=router)


def summary_call(model: str = "auto") -> switchman.Call:
    return switchman.Call(prompt=PROMPT, model=model, intent=INTENT)


def is_paid(model: ModelSpec) -> bool:
    return model.input_per_mtok > 0 or model.output_per_mtok > 0 or model.request_fee_usd > 0


def eligible(config: Config) -> list[ModelSpec]:
    """The models eligible for the summary call, everything healthy (as ``auto`` sees them)."""
    call = summary_call()
    return list(
        check_eligibility(
            call,
            config.models.values(),
            input_tokens=estimate_input_tokens(call),
            unavailable={},
        ).eligible
    )


def cheapest_paid(models: Sequence[ModelSpec], usage: switchman.Usage) -> tuple[str, float]:
    """The paid model among ``models`` that would have cost least for ``usage``, and that cost."""
    costs = [
        (m.cost(usage.input_tokens, usage.output_tokens, usage.cached_input_tokens), m.alias)
        for m in models
        if is_paid(m)
    ]
    cost, alias = min(costs)
    return alias, cost


def cheapest_alias(config: Config) -> str:
    """The cheapest paid eligible model for the summary call's estimated size."""
    call = summary_call()
    usage = switchman.Usage(input_tokens=estimate_input_tokens(call), output_tokens=256)
    return cheapest_paid(eligible(config), usage)[0]


async def run_policy(config: Config, model: str, calls: int) -> list[dict[str, Any]]:
    """``calls`` summary calls naming ``model``, one every ``ARRIVAL_S`` virtual seconds;
    one record per call."""
    pool = eligible(config)
    names = {m.alias for m in pool}
    call = summary_call(model)
    records: list[dict[str, Any]] = []
    async with switchman.open_router(config, env={}) as router:
        for _ in range(calls):
            await trio.sleep(ARRIVAL_S)
            result = await router.call(call)
            attempts = result.trace.attempts
            ref_alias, reference = cheapest_paid(pool, result.usage)
            records.append(
                {
                    "status": result.status,
                    "cost_usd": result.cost_usd,
                    "reference_usd": reference,
                    "reference_alias": ref_alias,
                    "first": attempts[0].alias if attempts else "",
                    "tried": sorted({a.alias for a in attempts}),
                    "answered": result.model or "",
                    # auto's own eligibility matches the set the reference is taken over
                    "eligibility_differs": model == "auto"
                    and set(result.trace.eligibility.eligible) != names,
                }
            )
    return records


def ratio(records: Sequence[dict[str, Any]]) -> float:
    reference = sum(r["reference_usd"] for r in records)
    return sum(r["cost_usd"] for r in records) / reference if reference > 0 else float("nan")


def figures(
    records: Sequence[dict[str, Any]], config: Config, *, skip: int, block: int
) -> dict[str, Any]:
    """One policy's figures for one seed."""
    after = records[skip:]
    blocks = [ratio(after[i : i + block]) for i in range(0, len(after), block)]
    first: dict[str, int] = {}
    for r in records:
        first[r["first"]] = first.get(r["first"], 0) + 1
    tried = {a for r in records for a in r["tried"]}
    models = config.models
    dear = sum(
        1
        for r in records
        if r["first"] in models and models[r["first"]].output_per_mtok >= DEAR_OUTPUT_PER_MTOK
    )
    free = sum(1 for r in records if r["answered"] in models and not is_paid(models[r["answered"]]))
    calls_after = len(after)
    return {
        "calls": len(records),
        "complete": sum(1 for r in records if r["status"] == "complete"),
        "ratio_after_skip": ratio(after),
        "block_ratios": blocks,
        "cost_per_100_usd": 100 * sum(r["cost_usd"] for r in after) / calls_after
        if calls_after
        else float("nan"),
        "reference_per_100_usd": 100 * sum(r["reference_usd"] for r in after) / calls_after
        if calls_after
        else float("nan"),
        "dear_first": dear,
        "free_answered": free,
        "distinct_first": len(first),
        "distinct_tried": len(tried),
        "reference_models": sorted({r["reference_alias"] for r in records}),
        "eligibility_differs": sum(1 for r in records if r["eligibility_differs"]),
        "first_choice": dict(sorted(first.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def measure(
    calls: int = DEFAULT_CALLS,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    *,
    skip: int = 100,
    block: int = 100,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every policy over ``calls`` calls for each seed, each run on its own ``MockClock``;
    ``log`` gets a line per run (printed by default)."""
    say = log or functools.partial(print, flush=True)
    base = catalog_config(seeds[0])
    pool = eligible(base)
    cheapest = cheapest_alias(base)
    cheap_name = f"cheapest only ({cheapest})"
    plans: dict[str, tuple[float | None, str]] = {
        AUTO: (None, "auto"),
        AUTO_NO_EXPLORATION: (0.0, "auto"),
        cheap_name: (None, cheapest),
    }
    out: dict[str, dict[str, Any]] = {name: {"seeds": {}} for name in plans}
    for seed in seeds:
        for name, (exploration, model) in plans.items():
            config = catalog_config(seed, exploration=exploration)
            clock = trio.testing.MockClock(autojump_threshold=0)
            records = trio.run(functools.partial(run_policy, config, model, calls), clock=clock)
            f = figures(records, config, skip=skip, block=block)
            out[name]["seeds"][str(seed)] = f
            say(
                f"    seed {seed} {name:<44} ratio {_x(f['ratio_after_skip'])} "
                f"(blocks {_x(min(f['block_ratios'], default=float('nan')))} to "
                f"{_x(max(f['block_ratios'], default=float('nan')))}), dearest tier "
                f"{f['dear_first']}, free {f['free_answered']}, models {f['distinct_first']}"
            )
    for entry in out.values():
        per_seed = list(entry["seeds"].values())
        ratios = [s["ratio_after_skip"] for s in per_seed]
        blocks = [b for s in per_seed for b in s["block_ratios"]]
        entry["ratio_min"] = min(ratios)
        entry["ratio_max"] = max(ratios)
        entry["block_min"] = min(blocks, default=float("nan"))
        entry["block_max"] = max(blocks, default=float("nan"))
        entry["dear_first"] = sum(s["dear_first"] for s in per_seed)
        entry["calls"] = sum(s["calls"] for s in per_seed)
    return {
        "calls_per_seed": calls,
        "seeds": list(seeds),
        "skip": skip,
        "block": block,
        "arrival_s": ARRIVAL_S,
        "intent": INTENT,
        "prompt_tokens_estimate": estimate_input_tokens(summary_call()),
        "models": len(base.models),
        "providers": len(base.providers),
        "eligible": len(pool),
        "free_eligible": sorted(m.alias for m in pool if not is_paid(m)),
        "cheapest_paid": cheapest,
        "trust_tier": {m.alias: m.trust_tier for m in pool},
        "dear_output_per_mtok": DEAR_OUTPUT_PER_MTOK,
        "policies": out,
    }


def run(ctx: Context) -> Section:
    if ctx.profile.name == "smoke":
        data = measure(SMOKE_CALLS, (1,), skip=20, block=20)
    else:
        data = measure()
    return Section(
        key="catalog", title="Exploring the whole catalog", markdown=render(data), data=data
    )


def _x(value: float) -> str:
    """A ratio to two decimals (``fmt`` keeps one above 1)."""
    return "-" if value != value else f"{value:.2f}"


def render(data: dict[str, Any]) -> str:
    skip, block = data["skip"], data["block"]
    headers = [
        "policy",
        "seed",
        f"cost / cheapest paid, calls {skip + 1}-{data['calls_per_seed']}",
        f"per {block} calls, lowest to highest",
        "first attempts at the dearest tier",
        "answered by a free model",
        "distinct models tried",
        "most first attempts",
        "$ per 100 calls (cheapest paid: $ per 100)",
    ]
    rows: list[list[Any]] = []
    for name, entry in data["policies"].items():
        for seed, s in entry["seeds"].items():
            blocks = s["block_ratios"]
            rows.append(
                [
                    name,
                    seed,
                    _x(s["ratio_after_skip"]),
                    f"{_x(min(blocks))} to {_x(max(blocks))}" if blocks else "-",
                    f"{s['dear_first']} of {s['calls']}",
                    s["free_answered"],
                    s["distinct_tried"],
                    ", ".join(f"{a} {n}" for a, n in list(s["first_choice"].items())[:2]),
                    f"{s['cost_per_100_usd']:.4f} ({s['reference_per_100_usd']:.4f})",
                ]
            )
    auto = data["policies"][AUTO]
    summary = (
        f"{data['models']} models on {data['providers']} simulated providers, {data['eligible']} "
        f"eligible for the summary call ({len(data['free_eligible'])} free Ollama models among "
        f"them); cheapest paid: `{data['cheapest_paid']}`. One `{data['intent']}` call "
        f"(about {data['prompt_tokens_estimate']} input tokens) a virtual minute, "
        f"{data['calls_per_seed']} calls per seed, seeds {', '.join(map(str, data['seeds']))}. "
        f"`auto` cost {_x(auto['ratio_min'])} to {_x(auto['ratio_max'])} times what the "
        f"cheapest paid model would have for the same tokens after the first {skip} calls "
        f"({_x(auto['block_min'])} to {_x(auto['block_max'])} per {block} calls); "
        f"{auto['dear_first']} of {auto['calls']} first attempts went to the dearest tier "
        f"(${data['dear_output_per_mtok']:.0f} a million output tokens and up)."
    )
    greedy = data["policies"][AUTO_NO_EXPLORATION]["seeds"]
    tops = sorted({next(iter(s["first_choice"]), "") for s in greedy.values()} - {""})
    if tops:
        tiers = data["trust_tier"]
        cheapest = data["cheapest_paid"]
        summary += (
            f" With exploration 0 the first attempts went to {', '.join(f'`{t}`' for t in tops)}"
            f" ({', '.join(tiers.get(t, '?') for t in tops)}; the cheapest paid model is "
            f"{tiers.get(cheapest, '?')}, and the ranking weighs trust tier beside price): "
            "that ratio is the ranking's trade-off, what `auto` costs above it exploration."
        )
    return markdown_table(headers, rows) + "\n\n" + summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._catalog", description=__doc__)
    parser.add_argument("--calls", type=int, default=DEFAULT_CALLS)
    parser.add_argument("--seeds", default=",".join(map(str, DEFAULT_SEEDS)))
    parser.add_argument("--skip", type=int, default=100, help="calls left out at the start")
    parser.add_argument("--block", type=int, default=100, help="calls per block")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    data = measure(args.calls, seeds, skip=args.skip, block=args.block)
    print("\n" + render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
