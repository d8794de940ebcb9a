"""Embedding switchman in a trio application: one call, one streamed call, live status.

Run it with ``python examples/embed.py``. With no provider key in the environment it
runs on the built-in simulator, and every result says so (``simulated``).
"""

from __future__ import annotations

import trio

import switchman


def outcome(result: switchman.Result) -> str:
    """What to tell the application's user, by the kind of failure (each raised class is
    a ``switchman.CallFailed`` carrying the result)."""
    try:
        result.raise_for_status()
    except switchman.BudgetExceeded as e:
        return f"over budget, try later: {e}"
    except switchman.NoEligibleModel as e:
        reasons = e.result.trace.eligibility.excluded if e.result else ()
        return f"no model could take it: {[(x.alias, x.reason) for x in reasons]}"
    except switchman.CallFailed as e:
        return f"failed ({e.code}): {e.result.errors[0].message}"
    return "answered"


async def main() -> None:
    async with switchman.open_router(switchman.load_config(None)) as router:
        result = await router.call(
            switchman.Call(prompt="What is the capital of France?", model="auto", intent="lookup")
        )
        print(
            f"{result.model} ({'simulated' if result.simulated else result.provider}) "
            f"${result.cost_usd:.6f}: {result.answer}"
        )

        async with router.stream(
            switchman.Call(prompt="Explain recursion", model="claude")
        ) as events:
            async for event in events:  # Delta(text) items, then the final Result
                if isinstance(event, switchman.Delta):
                    print(event.text, end="", flush=True)
                else:
                    print(f"\n-- answered by {event.model}, {len(event.trace.attempts)} attempt(s)")

        if result.ok:  # teach it what a good answer was (feedback is for answered calls)
            await router.feedback(result.call_id, 0.9)
        else:
            print(outcome(result))
        for provider in router.status().providers:
            if provider.disabled_reason is None:
                print(provider.name, [(m.alias, m.breaker) for m in provider.models])


if __name__ == "__main__":
    trio.run(main)
