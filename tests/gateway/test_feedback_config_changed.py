"""``POST /feedback`` on a job answered before the config changed credits the model that
answered it: under its new alias when the alias was renamed, and not at all when the alias
now names another model (which never answered it). The real router and gateway on a real
SQLite store, the simulator."""

from __future__ import annotations

from pathlib import Path

import attrs
import trio

import switchman
from switchman.catalog import Config
from switchman.store import open_store
from tests._simfleet import fleet, sim_model
from tests.gateway._fakes import running_gateway


def _feedback(router: switchman.Router, alias: str) -> float | None:
    for provider in router.status().providers:
        for m in provider.models:
            if m.alias == alias:
                return (m.stats.get("summarize") or {}).get("feedback")
    raise AssertionError(f"no model {alias}")


async def _rate(db: Path, config: Config, job_id: str) -> tuple[int, str, switchman.Router]:
    async with (
        open_store(db) as store,
        switchman.open_router(config, store=store) as router,
        running_gateway(router, store=store) as gw,
    ):
        r = await gw.client.post(f"/feedback/{job_id}", json={"score": 0.1})
        return r.status_code, r.text, router


async def test_feedback_follows_the_model_that_answered_across_a_config_change(
    tmp_path: Path,
) -> None:
    db = tmp_path / "jobs.db"
    first = fleet(sim_model("fast", model_id="model-a"))
    renamed = fleet(sim_model("quick", model_id="model-a"))
    reused = fleet(sim_model("fast", model_id="model-new"))
    jobs = []
    with trio.fail_after(40):
        async with (
            open_store(db) as store,
            switchman.open_router(first, store=store) as router,
            running_gateway(router, store=store) as gw,
        ):
            for _ in range(2):
                body = {"prompt": "sum it up", "model": "fast", "intent": "summarize"}
                r = await gw.client.post("/call?wait=10", json=body)
                assert r.json()["status"] == "complete", r.text
                jobs.append(r.json()["job_id"])
        status, text, router = await _rate(db, reused, jobs[0])
        # "fast" names another model now: it never answered this job
        assert status == 404 and "is not in service here" in text, text
        assert _feedback(router, "fast") is None
        async with (
            open_store(db) as store,
            switchman.open_router(renamed, store=store) as router,
            running_gateway(router, store=store) as gw,
        ):
            r = await gw.client.post(f"/feedback/{jobs[1]}", json={"score": 0.1})
            assert r.status_code == 200, r.text
            # the model that answered it is "quick" now, and it has the rating
            feedback = _feedback(router, "quick")
    assert feedback is not None and feedback < 0.5


def _stored(alias: str, provider: str, said: str, model_id: str | None) -> dict[str, object]:
    attempt: dict[str, object] = {
        "n": 1,
        "alias": alias,
        "provider": provider,
        "outcome": "success",
    }
    if model_id is not None:
        attempt["model_id"] = model_id
    return {
        "model": alias,
        "provider": provider,
        "provider_model_id": said,
        "trace": {"attempts": [{**attempt, "outcome": "error"}, attempt]},
    }


def test_the_model_that_answered_is_found_by_what_the_config_named_then() -> None:
    """By the provider's reported id it went wrong both ways: ``gpt-4o-mini-2024-07-18``
    starts with ``gpt-4o`` (a rating given to the model its alias names now), and
    ``gemini-3.8-flash`` is what ``gemini-flash-latest`` reports (a rating refused after a
    mere restart)."""
    from switchman.catalog import ModelSpec
    from switchman.gateway._models_view import answered_by

    def config(**aliases: tuple[str, str]) -> Config:
        models = {
            a: ModelSpec(alias=a, provider=p, model_id=m, input_per_mtok=1.0, output_per_mtok=1.0)
            for a, (p, m) in aliases.items()
        }
        return fleet(*models.values())

    mini = _stored("fast", "openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini")
    assert answered_by(mini, config(fast=("openai", "gpt-4o"))) is None  # reassigned
    assert answered_by(mini, config(fast=("openai", "gpt-4o-mini"))) == "fast"
    renamed = config(quick=("openai", "gpt-4o-mini"), fast=("openai", "gpt-4o"))
    assert answered_by(mini, renamed) == "quick"
    # a dated id in the config, recorded as it is
    sonnet = _stored("s", "anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929")
    assert answered_by(sonnet, config(s=("anthropic", "claude-sonnet-4-5-20250929"))) == "s"
    latest = _stored("gf", "gemini", "gemini-3.8-flash", "gemini-flash-latest")
    assert answered_by(latest, config(gf=("gemini", "gemini-flash-latest"))) == "gf"
    assert answered_by(latest, config(g=("gemini", "gemini-flash-latest"))) == "g"
    # stored before attempts named their model: the alias naming the reported id, else
    # its own alias if it names a model of the same provider
    older = _stored("fast", "openai", "gpt-4o-mini-2024-07-18", None)
    assert answered_by(older, config(fast=("openai", "gpt-4o-mini"))) == "fast"
    assert answered_by(older, config(quick=("openai", "gpt-4o-mini"))) == "quick"
    assert answered_by(older, config(fast=("openai", "gpt-4o"))) is None  # reassigned
    assert answered_by(older, config(fast=("gemini", "gemini-flash-latest"))) is None
    exact = _stored("x", "openai", "gpt-4o", None)
    assert answered_by(exact, config(y=("openai", "gpt-4o"))) == "y"  # renamed
    assert answered_by(exact, config(x=("openai", "gpt-4"))) is None
    resolved = _stored("gf", "gemini", "gemini-3.8-flash", None)
    assert answered_by(resolved, config(gf=("gemini", "gemini-flash-latest"))) == "gf"


async def test_feedback_for_a_model_out_of_service_is_refused_and_can_be_given_later(
    tmp_path: Path,
) -> None:
    """Its provider has no key this run: the score went nowhere, yet the job was marked
    rated (a later rating, its provider back, answered 409 already_rated)."""
    from switchman.catalog import ProviderSpec

    db = tmp_path / "jobs.db"
    keyed = fleet(sim_model("fast", model_id="model-a"))
    keyless = attrs.evolve(
        keyed,
        providers={
            "sim": ProviderSpec(
                name="sim",
                kind="openai",
                base_url="http://127.0.0.1:9/v1",
                api_key_env="NO_SUCH_KEY",
            )
        },
        models={"fast": attrs.evolve(keyed.models["fast"], sim=None)},
        simulated=False,
    )
    with trio.fail_after(40):
        async with (
            open_store(db) as store,
            switchman.open_router(keyed, store=store) as router,
            running_gateway(router, store=store) as gw,
        ):
            body = {"prompt": "sum it up", "model": "fast", "intent": "summarize"}
            job = (await gw.client.post("/call?wait=10", json=body)).json()["job_id"]
        status, text, _ = await _rate(db, keyless, job)
        assert status == 404 and "is not in service here" in text, text
        status, text, router = await _rate(db, keyed, job)
        assert status == 200, text
        assert _feedback(router, "fast") is not None
