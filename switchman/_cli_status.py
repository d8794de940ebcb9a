"""``switchman health``, ``providers``, ``budgets``, ``jobs`` and ``result``: the daemon's
state and its jobs, as read from its routes and printed for a person (``--json`` for
scripts)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import quote

from switchman import cli
from switchman._cli_print import color, usd
from switchman.cli import API_KEY_ENV, EXIT_FAILED, EXIT_OK


def health(args: argparse.Namespace) -> int:
    data = cli._json_or_error(cli._request(args, "GET", "/health"))
    state = data.get("status")
    code = EXIT_OK if state == "ok" else EXIT_FAILED  # a probe can rely on it
    if args.json:
        print(json.dumps(data, indent=2))
        return code
    if set(data) == {"status"}:  # the daemon has keys, and this is not an admin's
        hint = (
            "this key is not an admin's, or not a valid key"
            if cli._key_given()
            else f"set {API_KEY_ENV} to an admin key"
        )
        print(
            color(f"{state}", "32" if state == "ok" else "31", sys.stdout)
            + f"  (providers, breakers and jobs need an admin key: {hint})"
        )
        return code
    where = " on the built-in simulator (answers are simulated)" if data.get("simulated") else ""
    print(
        color(f"{state}", "32" if state == "ok" else "31", sys.stdout)
        + f"  switchman {data.get('version', '?')}, up {_duration(data.get('uptime_s') or 0)}"
        + where
    )
    jobs = data.get("jobs") or {}
    counts = ", ".join(f"{jobs.get(k, 0)} {k}" for k in ("complete", "failed", "running", "queued"))
    print(f"jobs       {counts}; {data.get('jobs_in_flight', 0)} in flight")
    disabled = []
    for p in data.get("providers") or ():
        if p.get("disabled"):
            disabled.append(p["name"])
            continue
        models = p.get("models") or ()
        by_state: dict[str, list[str]] = {}
        for m in models:
            by_state.setdefault(m.get("breaker", "?"), []).append(m["alias"])
        closed = len(by_state.pop("closed", ()))
        line = f"{p['name']:<10} {_count(len(models), 'model')}, breakers: {closed} closed"
        for breaker, aliases in sorted(by_state.items()):
            line += f", {breaker}: {' '.join(aliases)}"
        print(f"provider   {line}")
    if disabled:
        print(f"disabled   {', '.join(disabled)} (switchman providers says why)")
    if (problem := data.get("store_problem")) is not None:
        print(f"store      {problem}")
    left = data.get("global_budget_left_usd") or {}
    refusing = data.get("global_budget_refusing") or ()
    if left:
        line = ", ".join(f"${usd:.6f} left this {period}" for period, usd in left.items())
        if refusing:
            line += f"; refusing calls that could cost more ({', '.join(refusing)})"
        print(f"budget     global: {line}")
    return code


def _count(n: int, noun: str) -> str:
    """``1 model``, ``3 models``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m {seconds % 60:.0f}s"
    return f"{seconds // 3600:.0f}h {seconds % 3600 // 60:.0f}m"


def providers(args: argparse.Namespace) -> int:
    data = cli._json_or_error(cli._request(args, "GET", "/providers"))
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    providers = data.get("providers", ())

    # the ones that can answer first, with their models; the others one line each
    def reason_of(p: dict[str, Any]) -> str | None:
        # admins see the reason; other keys whether it is disabled, and when it is back
        back = f" (back in {p['back_in_s']:g}s)" if p.get("back_in_s") else ""
        return p.get("disabled_reason") or (f"disabled{back}" if p.get("disabled") else None)

    for p in sorted(providers, key=lambda p: reason_of(p) is not None):
        reason = reason_of(p)
        if reason:
            count = len(p.get("models", ()))
            print(f"{p['name']:<12} {p.get('kind', ''):<10} {reason}  ({_count(count, 'model')})")
            continue
        # (a key that is not an admin is not shown calls in flight: say nothing then)
        busy = f"  in flight {p['in_flight']}" if "in_flight" in p else ""
        models = p.get("models", ())
        serving = [m for m in models if m.get("enabled", True)]
        none = "  serves no model" if not serving else ""
        print(f"{p['name']:<12} {p.get('kind', ''):<10} enabled{busy}{none}")
        for m in serving:
            held = m.get("rate_limited_for_s") or 0.0
            limited = f"  rate limited {held:.1f}s more" if held >= 0.05 else ""
            if m.get("held_out"):
                limited += f"  held out {m.get('held_for_s') or 0:.0f}s more: {m['held_out']}"
            if m.get("breaker_opened_by"):
                limited += f"  ({m['breaker_opened_by']})"
            seed = {True: "  seed", False: "  no seed"}.get(m.get("supports_seed"), "")
            print(
                f"    {m['alias']:<32} breaker {m.get('breaker', '?'):<9}{seed}{limited}"
                + _learned(m)
            )
        if len(serving) < len(models):  # turned off (in the file, or not pulled by Ollama)
            print(f"    ({_count(len(models) - len(serving), 'model')} off)")
    return EXIT_OK


def _learned(model: dict[str, Any]) -> str:
    """What the router learned of ``model`` over all intents, as ``providers`` shows it:
    how often it answered, how fast, when it was last heard from (``--json``: per
    intent)."""
    stats = model.get("stats") or {}
    # each intent's, weighed by what was learned of it ("*", what the model is for intents
    # it has not served, leaves refusals out: a model refusing half its calls read 100%)
    each = [s for intent, s in stats.items() if intent != "*" and s.get("n")] or [
        s for intent, s in stats.items() if intent == "*" and s.get("n")
    ]
    parts = []
    for key, shown in (("success_rate", "{:.0%} answered"), ("latency_ms", "{:,.0f} ms")):
        known = [(s["n"], s[key]) for s in each if s.get(key) is not None]
        if known:
            weight = sum(n for n, _ in known)
            parts.append(shown.format(sum(n * v for n, v in known) / weight))
    heard = [s["heard_s_ago"] for s in each if s.get("heard_s_ago") is not None]
    if heard:
        parts.append(f"heard {min(heard):,.0f}s ago")
    return "  learned: " + ", ".join(parts) if parts else ""


def _usd(amount: float) -> str:
    """Dollars to the micro-dollar, or to the nano-dollar below one (spend is kept so)."""
    return f"${amount:.9f}" if 0.0 < amount < 1e-6 else f"${amount:.6f}"


def budgets(args: argparse.Namespace) -> int:
    data = cli._json_or_error(cli._request(args, "GET", "/budgets"))
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    for b in data.get("budgets", ()):
        spent, limit, left = b.get("spent_usd", {}), b.get("limit_usd", {}), b.get("left_usd", {})
        parts = []
        for period in ("hour", "day", "month"):
            part = f"{period} {_usd(spent.get(period, 0.0))}"
            if period in limit:
                part += f" of ${limit[period]:g} ({_usd(left.get(period, 0.0))} left)"
            parts.append(part)
        print(f"{b.get('scope', '?'):<24} " + "   ".join(parts))
    # (on stderr: a script reading the lines of stdout meets one line per scope)
    print("spend in the current UTC hour, day and month", file=sys.stderr)
    return EXIT_OK


def result(args: argparse.Namespace) -> int:
    """``switchman result JOB_ID [--poll]``: the job's result, as ``run`` prints one."""
    params = {"wait": 30} if args.poll else {}
    path = f"/result/{quote(args.job_id, safe='')}"
    while True:
        resp = cli._request(args, "GET", path, params=params, timeout=40, job_id=args.job_id)
        data = cli._json_or_error(resp)
        if not args.poll or data.get("status") in ("complete", "failed"):
            break
    status = data.get("status")
    if status in ("queued", "running") and not args.json:
        wait = f"switchman result {args.job_id} --poll"
        print(f"job {args.job_id} is {status}; wait for it with: {wait}", file=sys.stderr)
        return cli.EXIT_PENDING
    if "result" not in data and status not in ("queued", "running"):
        return cli._without_result(data, as_json=args.json)
    if args.json:
        print(json.dumps(data, indent=2))
        if status in ("queued", "running"):
            return cli.EXIT_PENDING
        return EXIT_FAILED if status == "failed" else EXIT_OK
    return cli.print_result(data["result"])


def jobs(args: argparse.Namespace) -> int:
    """``switchman jobs``: the recent jobs, a line each (``--json``: as the daemon lists them)."""
    params: dict[str, Any] = {"limit": args.limit}
    if args.status:
        params["status"] = args.status
    data = cli._json_or_error(cli._request(args, "GET", "/jobs", params=params))
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    jobs = data.get("jobs", data) if isinstance(data, dict) else data
    for job in jobs:  # summaries: model, requested_model and cost_usd at the top level
        model = job.get("model") or job.get("requested_model") or "-"
        why = job.get("reason") or job.get("error_code")  # a failed job says why
        reason = f"  ({why})" if why else ""
        print(
            f"{job['job_id']}  {job['status']:<9} {model:<20} "
            f"{usd(job.get('cost_usd') or 0.0)}{reason}"
        )
    return EXIT_OK
