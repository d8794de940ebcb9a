"""A cheap call's cost as the command line prints it: ``run``, ``result`` and ``jobs``
against a real gateway give it enough significant digits (``$0.00000042``, never
``$0.000000`` for a call that cost something), all three alike."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio

import switchman
from switchman.catalog import config_from_dict
from switchman.cli import main, usd
from tests.gateway._fakes import running_gateway

#: sim/fast at a hundredth of a cent a million tokens: a short call costs under a micro-dollar
CHEAP = {
    "alias": "sim/fast",
    "provider": "sim",
    "model_id": "fast",
    "input_per_mtok": 0.01,
    "output_per_mtok": 0.01,
}
COST = re.compile(r"\$\d+\.\d+")


@pytest.mark.parametrize(
    ("amount", "printed"),
    [
        (4.2e-7, "$0.00000042"),
        (1.234e-6, "$0.0000012"),
        (9.99e-6, "$0.000010"),  # (it rounds up to a hundredth of a cent)
        (9.94e-6, "$0.0000099"),
        (1e-5, "$0.000010"),
        (0.000321, "$0.000321"),
        (1.5, "$1.500000"),
        (0.0, "$0.000000"),
        (1e-9, "$0.0000000010"),
        (3e-12, "<$0.000000001"),  # (spend is counted in nano-dollars)
        (1e-16, "<$0.000000001"),
    ],
)
def test_a_cost_keeps_two_significant_digits_below_a_hundredth_of_a_cent(
    amount: float, printed: str
) -> None:
    assert usd(amount) == printed


async def test_run_result_and_jobs_print_a_cheap_calls_cost_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    config = config_from_dict(
        {"server": {"db": str(tmp_path / "money.db")}, "models": [CHEAP]}, env={}
    )
    with trio.fail_after(60):
        async with (
            switchman.open_router(config, env={}) as router,
            running_gateway(router) as gw,
        ):
            where = ["--host", "127.0.0.1", "--port", str(gw.port)]

            def cli(*argv: str) -> tuple[int, str, str]:
                code = main([*argv, *where])
                out, err = capsys.readouterr()
                return code, out, err

            code, _, ran = await trio.to_thread.run_sync(cli, "run", "sim/fast", "Say hi")
            assert code == 0, ran
            job_id = re.search(r"job (job_\w+)", ran)
            assert job_id is not None, ran
            code, _, polled = await trio.to_thread.run_sync(cli, "result", job_id.group(1))
            assert code == 0, polled
            code, listed, _ = await trio.to_thread.run_sync(cli, "jobs")
            assert code == 0
            stored = (await gw.client.get(f"/result/{job_id.group(1)}")).json()
    cost = stored["result"]["cost_usd"]
    assert 0 < cost < 1e-6  # printed with six decimals it was $0.000000
    (row,) = [line for line in listed.splitlines() if line.startswith(job_id.group(1))]
    printed = {m.group(0) for m in COST.finditer(ran + polled + row)}
    assert "$0.000000" not in printed  # what six decimals showed
    assert printed == {usd(cost)}, (ran, polled, row)
    assert float(usd(cost).lstrip("$")) == pytest.approx(cost, rel=0.06)
