"""The benchmark suite's smoke profile, run in-process at its tiniest sizes.

Timings are never asserted: only that every scenario runs, answers its calls
and writes what the report needs. Processes (fake upstream, gateway) are real
and on loopback; LiteLLM is never installed here.
"""

from __future__ import annotations

import functools
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

import switchman
from benchmarks import (
    _configs,
    _failover,
    _inproc,
    _learning,
    _litellm,
    _loadgen,
    _plots,
    _stream,
    _util,
)
from benchmarks.__main__ import main
from benchmarks._procs import BARE_RELAY
from benchmarks._relay_host import serve_relay
from benchmarks._suite import SMOKE, Context
from switchman.gateway import serve_gateway
from switchman.sim import FakeServerConfig, serve_fake_provider
from switchman.store import open_store


def test_smoke_profile_runs_every_scenario(tmp_path: Path) -> None:
    assert main(["--smoke", "--results", str(tmp_path)]) == 0

    inproc = json.loads((tmp_path / "inproc.json").read_text())
    assert inproc["rows"]["switchman embedded"]["failures"] == 0
    assert len(inproc["runs"]) == 2  # the smoke profile's repeats
    assert inproc["rows"]["switchman embedded"]["calls"] == 2 * 20
    assert inproc["spread"]["added_p50_ms"]["runs"] == 2
    assert "LiteLLM Router" not in inproc["rows"]
    assert any("not measured in --smoke" in n for n in inproc["notes"])

    gateway = json.loads((tmp_path / "gateway.json").read_text())
    targets = {p["target"] for p in gateway["points"]}
    assert targets == {"direct", "switchman gateway", BARE_RELAY}
    assert all(p["ok"] > 0 and p["errors"] == 0 for p in gateway["points"])
    assert gateway["upstream_ceiling"]["ok"] > 0
    # the decisive point (c=4 in smoke) twice per system, the order rotated; others once
    decisive = [r for r in gateway["runs"] if r["mode"] == "closed" and r["concurrency"] == 4]
    assert [r["target"] for r in decisive] == [
        "direct",
        "switchman gateway",
        BARE_RELAY,
        "switchman gateway",
        BARE_RELAY,
        "direct",
    ]
    assert len([r for r in gateway["runs"] if r["concurrency"] == 1]) == 3
    relay_ratio = gateway["spread"]["relay_ratio_c64"]
    by_run = {(r["target"], r["run"]): r["throughput_rps"] for r in decisive}
    expected = [by_run[("switchman gateway", i)] / by_run[(BARE_RELAY, i)] for i in (0, 1)]
    assert relay_ratio["values"] == pytest.approx(expected)

    streaming = json.loads((tmp_path / "streaming.json").read_text())
    for name in ("switchman embedded", "switchman gateway", BARE_RELAY):
        assert streaming["rows"][name]["failures"] == 0
        assert streaming["rows"][name]["chunks_mean"] > 1
    assert [f"direct (for {BARE_RELAY})", BARE_RELAY] in streaming["pairs"]
    assert len(streaming["runs"]) == 2
    share = streaming["spread"]["gateway_over_relay"]["added_ttft_p50_ms"]
    gw = streaming["spread"]["switchman gateway"]["added_ttft_p50_ms"]["values"]
    relay = streaming["spread"][BARE_RELAY]["added_ttft_p50_ms"]["values"]
    assert share["values"] == pytest.approx([a - b for a, b in zip(gw, relay, strict=True)])

    memory = json.loads((tmp_path / "memory.json").read_text())
    points = memory["series"]["switchman gateway"]["points"]
    assert [p["calls"] for p in points] == [0, 50, 100, 150]
    assert all(p["rss_mib"] > 10 and p["errors"] == 0 for p in points)
    assert memory["job_retention"] == 25  # half the first checkpoint
    assert all(isinstance(p["jobs"], int) for p in points)  # read from the store file
    leak = memory["series"]["switchman gateway"]["visible_leak_bytes_per_call"]
    assert leak == pytest.approx(points[1]["rss_mib"] * 1024 * 1024 * 0.1 / 100)

    failover = json.loads((tmp_path / "failover.json").read_text())
    rows = failover["rows"]
    # fallback across providers rescues every call whose primary fails
    assert rows["switchman embedded"]["success_rate"] == 1.0
    assert rows["direct (no failover)"]["success_rate"] < 1.0

    learning = json.loads((tmp_path / "learning.json").read_text())
    assert learning["policies"]["oracle"]["total_regret"] == 0.0
    assert len(learning["policies"]["round-robin"]["cumulative_regret"]) == 40

    overhead = json.loads((tmp_path / "overhead.json").read_text())
    assert overhead["failed"] == 0 and overhead["median_us"] > 0

    report = (tmp_path / "REPORT.md").read_text()
    for title in ("(a) In-process", "(b) Gateway", "(c) Streaming", "(d) Memory", "(e) Failover"):
        assert title in report
    assert f"switchman gateway over the {BARE_RELAY}" in report
    summary = json.loads((tmp_path / "summary.json").read_text())
    commit = summary["machine"]["commit"]
    assert f"at commit `{commit}`" in report  # the commit measured, and the load as it started
    assert "at the start," in report and "at the end" in report
    assert {"loadavg_1m_at_start", "loadavg_1m_at_end"} <= set(summary["machine"])
    # a commit of this checkout (others may commit meanwhile: not necessarily HEAD now)
    known = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", commit.split()[0] + "^{commit}"],
        capture_output=True,
        check=False,
    )
    assert known.returncode == 0 or commit == "unknown"
    assert "added_p50_ms" in summary["figures"]
    assert summary["figures"]["ranges"]["added_p50_ms"]["runs"] == 2
    assert summary["figures"]["verdicts"] == {}  # smoke sizes judge nothing


def test_unknown_scenario_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--smoke", "--only", "nonsense"]) == 2
    assert "nonsense" in capsys.readouterr().err


async def test_load_loops_count_answers_and_errors() -> None:
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_fake_provider, FakeServerConfig())
            target = _loadgen.Target(
                name="fake",
                host="127.0.0.1",
                port=server.port,
                headers={"authorization": "Bearer sk-load"},  # the fake wants a key
            )
            good = await _loadgen.send_requests(
                target, _configs.chat_body("healthy"), concurrency=3, requests=30
            )
            assert (good.ok, good.errors) == (30, 0)
            assert len(good.latencies) == 30
            timed = await _loadgen.closed_loop(
                target, _configs.chat_body("healthy"), concurrency=2, duration_s=0.2
            )
            assert timed.ok > 0 and timed.errors == 0 and timed.duration_s == 0.2
            bad = await _loadgen.closed_loop(
                target, _configs.chat_body("down"), concurrency=2, duration_s=0.2
            )
            assert bad.ok == 0 and bad.errors > 0
            assert set(bad.error_kinds) == {"http_503"}
            opened = await _loadgen.open_loop(
                target, _configs.chat_body("healthy"), rate=100, duration_s=0.3
            )
            assert opened.ok == 30 and opened.errors == 0
            assert opened.row()["p99_ms"] >= opened.row()["p50_ms"] > 0
            nursery.cancel_scope.cancel()


async def test_bare_relay_passes_answers_on_as_they_arrive() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            up = await nursery.start(serve_fake_provider, FakeServerConfig())
            host, port = await nursery.start(serve_relay, up.base_url)
            url = f"http://{host}:{port}/v1/chat/completions"
            auth = {"authorization": "Bearer sk-relayed"}
            async with httpx.AsyncClient(timeout=10) as client:
                body = json.loads(_configs.chat_body("healthy"))
                ok = await client.post(url, json=body, headers=auth)
                assert ok.status_code == 200
                assert ok.headers["content-type"] == "application/json"
                assert ok.json()["choices"][0]["message"]["content"]
                seen = up.requests("healthy")[-1]
                assert seen.body == body  # forwarded unchanged, with the caller's key
                assert seen.headers["authorization"] == "Bearer ***"
                # the upstream's error status and body come back as they are
                down = await client.post(url, content=_configs.chat_body("down"), headers=auth)
                assert down.status_code == 503
                assert "overloaded or not ready" in down.json()["error"]["message"]
                # the upstream dropping the connection before answering: 502
                reset = await client.post(url, content=_configs.chat_body("reset"), headers=auth)
                assert reset.status_code == 502
                assert (await client.get(url)).status_code == 404
                # a stream that stalls halfway: what came before the stall arrives anyway
                stall = _configs.chat_body("stall", stream=True)
                async with client.stream("POST", url, content=stall, headers=auth) as response:
                    assert response.headers["content-type"].startswith("text/event-stream")
                    lines = response.aiter_lines()
                    while not _stream.content_of(await anext(lines)):
                        pass
            nursery.cancel_scope.cancel()


def _edges(window: _loadgen.Window) -> tuple[float | None, float | None]:
    return window.opens_at, window.closes_at


def test_window_counts_completions_inside_it_after_the_warm_up() -> None:
    w = _loadgen.Window(start=10.0, warmup_s=0.5, warmup_replies=3, duration_s=2.0)
    w.record(10.1, 0.1, None)
    w.record(10.2, 0.1, None)
    assert _edges(w) == (None, None)  # two replies: the warm-up wants three
    w.record(10.3, 0.3, None)
    assert _edges(w) == (10.5, 12.5)  # replies in, the time not yet
    w.record(10.5, 0.2, "http_503")  # at the opening instant: not inside
    w.record(10.6, 0.4, None)
    w.record(12.5, 1.9, "connection")  # started during the warm-up, completed inside
    w.record(12.6, 0.1, None)  # after the window
    assert (w.tally.ok, w.tally.latencies, w.tally.kinds) == (1, [0.4], {"connection": 1})
    slow = _loadgen.Window(start=0.0, warmup_s=0.5, warmup_replies=2, duration_s=1.0)
    slow.record(0.9, 0.9, None)
    slow.record(1.8, 0.9, None)
    assert slow.opens_at == 1.8  # the round trips took longer than the warm-up time
    idle = _loadgen.Window(start=0.0, warmup_s=0.5, warmup_replies=100, duration_s=1.0)
    idle.force_open(30.0)
    assert idle.closes_at == 31.0


class _FakeUpstream:
    """In-memory HTTP/1.1 server for the load loops: answers each request after ``rtt``."""

    def __init__(self, nursery: trio.Nursery, rtt: float, request_size: int) -> None:
        self.nursery, self.rtt, self.size = nursery, rtt, request_size

    async def connect(self) -> trio.abc.Stream:
        client, server = trio.testing.memory_stream_pair()
        self.nursery.start_soon(self._serve, server)
        return client

    async def _serve(self, stream: trio.abc.Stream) -> None:
        buf = b""
        while True:
            while len(buf) < self.size:
                data = await stream.receive_some()
                if not data:
                    return
                buf += data
            buf = buf[self.size :]
            await trio.sleep(self.rtt)
            await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")


async def _fake_closed_loop(
    rtt: float, *, concurrency: int, duration_s: float, warmup_s: float
) -> _loadgen.LoadResult:
    target = _loadgen.Target(name="fake", host="fake", port=1)
    body = b"{}"
    size = len(_loadgen.render_request(target, body))
    async with trio.open_nursery() as nursery:
        upstream = _FakeUpstream(nursery, rtt, size)
        result = await _loadgen.closed_loop(
            target,
            body,
            concurrency=concurrency,
            duration_s=duration_s,
            warmup_s=warmup_s,
            sample=trio.current_time,
            connect=upstream.connect,
        )
        nursery.cancel_scope.cancel()
    return result


async def test_closed_loop_throughput_on_a_fake_clock(autojump_clock: trio.abc.Clock) -> None:
    # 4 clients, 0.125 s a round trip: 32 answers a second, whatever the window
    fast = await _fake_closed_loop(0.125, concurrency=4, duration_s=1.0, warmup_s=0.55)
    assert (fast.ok, fast.errors, fast.duration_s) == (32, 0, 1.0)
    assert fast.throughput == 32.0
    assert fast.warmup_s == pytest.approx(0.55)
    assert all(x == pytest.approx(0.125) for x in fast.latencies)
    assert fast.sampled is not None  # read at the window's two ends
    assert fast.sampled[1] - fast.sampled[0] == pytest.approx(1.0)
    # a round trip (0.75 s) longer than the warm-up time (0.5 s): the warm-up waits for
    # two replies per client, then 6.1 s hold 8 completions per client (5.33/s in truth)
    slow = await _fake_closed_loop(0.75, concurrency=4, duration_s=6.1, warmup_s=0.5)
    assert (slow.warmup_replies, slow.ok) == (8, 32)
    assert slow.warmup_s == pytest.approx(1.5)
    assert slow.throughput == pytest.approx(4 / 0.75, rel=0.02)


async def test_benchmark_gateway_checks_its_key(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            up = await nursery.start(serve_fake_provider, FakeServerConfig())
            _, config = _configs.write_switchman_config(
                tmp_path, up.base_url, {_configs.ALIAS: "healthy"}, gateway_key=True
            )
            assert [(k.handle, k.admin) for k in config.keys] == [("bench", True)]
            async with (
                open_store(":memory:") as store,
                switchman.open_router(config, store=store, env=_configs.GATEWAY_ENV) as router,
            ):
                host, port = await nursery.start(
                    functools.partial(serve_gateway, router, host="127.0.0.1", port=0, store=store)
                )
                url = f"http://{host}:{port}/v1/chat/completions"
                body = _configs.chat_body(_configs.ALIAS)
                async with httpx.AsyncClient(timeout=10) as client:
                    refused = await client.post(url, content=body)
                    assert refused.status_code == 401
                    ok = await client.post(url, content=body, headers=_configs.gateway_auth())
                    assert ok.status_code == 200
                nursery.cancel_scope.cancel()


def test_stream_relay_cost_is_per_upstream_chunk() -> None:
    rows = {
        "direct": {"ttft_p50_ms": 1.0, "tail_p50_ms": 0.5, "chunks_mean": 9.0},
        # merges the upstream's 9 chunks into 2, and takes 0.9 ms longer to pass them on
        "merging": {"ttft_p50_ms": 1.5, "tail_p50_ms": 1.4, "chunks_mean": 2.0},
    }
    added = _stream.overheads(rows, "direct", "merging")
    assert added["added_ttft_p50_ms"] == pytest.approx(0.5)
    assert added["relay_us_per_chunk"] == pytest.approx(100.0)  # 900 µs / 9, not / 2


async def test_inproc_counts_a_failed_call_once(autojump_clock: trio.abc.Clock) -> None:
    outcomes = iter([True, False, True, True])

    async def one() -> bool:
        await trio.sleep(0.001)
        return next(outcomes)

    series = _inproc.Series()
    await _inproc._block(series, one, 4, record=True)
    series.cpu_s = 0.004  # what the block's process CPU would have been
    summary = series.summary()
    assert (summary["calls"], summary["failures"]) == (4, 1)
    assert summary["cpu_us_per_call"] == pytest.approx(1000.0)  # 4 ms over 4 calls, not 5


def test_percentiles_tables_and_process_metrics() -> None:
    assert _util.percentile([], 50) != _util.percentile([], 50)  # NaN
    assert _util.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert _util.percentile([0.0, 10.0], 99) == pytest.approx(9.9)
    table = _util.markdown_table(["a", "b"], [["x", 1.23456], ["y", None]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| x | 1.2 |", "| y | - |"]
    pid = os.getpid()
    assert _util.proc_rss_bytes(pid) > 1_000_000
    assert abs(_util.proc_rss_bytes(pid) - _util.process_rss_bytes(pid)) < 50_000_000
    assert _util.proc_cpu_seconds(pid) > 0
    assert _util.process_cpu_seconds(pid) >= _util.proc_cpu_seconds(pid) - 0.1


def test_failover_workload_and_configs() -> None:
    plan = _failover.workload(1000)
    share = sum(name != _configs.ALIAS for name in plan) / len(plan)
    assert 0.15 < share < 0.25
    assert plan == _failover.workload(1000)  # seeded: the same for every system
    routes = _failover.routes()
    toml = _configs.switchman_toml(
        "http://127.0.0.1:1",
        _failover.upstream_models(),
        routes=routes,
        provider_of={"fo-down": "primary"},
    )
    assert "[providers.primary]" in toml and "[providers.fake]" in toml
    yaml = json.loads(_configs.litellm_proxy_yaml("http://u", {"m": "healthy"}, fallbacks=routes))
    assert yaml["model_list"][0]["litellm_params"]["api_base"] == "http://u/v1"
    assert yaml["router_settings"]["fallbacks"][0] == {"r-down": ["fo-down", "bench"]}


def test_learning_oracle_has_no_regret_and_round_robin_has_some() -> None:
    config = _learning.fleet_config()
    fleet = _learning.sim_fleet(config)
    assert len(fleet) >= 3
    pick = _learning.policies(fleet)
    oracle = pick["oracle"]
    for intent in _learning.INTENTS:
        best = max(_learning.expected_reward(m, intent) for m in fleet.values())
        assert _learning.expected_reward(fleet[oracle(0, intent)], intent) == best
    rr = {pick["round-robin"](n, "code") for n in range(len(fleet))}
    assert rr == set(fleet)


def test_litellm_venv_is_reused_and_runner_output_read(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    # a stand-in interpreter: reports a version, and "runs" the runner by writing its output
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-c" ]; then echo 9.9.9; exit 0; fi\n'
        'echo \'{"mode_seen": true}\' > "$3"\n'
    )
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    ll = _litellm.ensure(venv)
    assert ll.version == "9.9.9" and ll.cli == venv / "bin" / "litellm"
    out = _litellm.run_runner(ll, {"mode": "inproc"}, tmp_path / "work", timeout_s=10)
    assert out == {"mode_seen": True}


def _fake_litellm(tmp_path: Path, result: str) -> _litellm.LiteLLM:
    """A stand-in for LiteLLM's venv whose runner answers ``result`` (a Python expression
    over ``spec``, the spec it was given) as its JSON output."""
    python = tmp_path / "fake-venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    code = (
        "import json, sys; spec = json.load(open(sys.argv[2])); "
        f"json.dump({result}, open(sys.argv[3], 'w'))"
    )
    python.write_text(f'#!/bin/sh\nexec {sys.executable} -c "{code}" "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return _litellm.LiteLLM(python=python, version="0-fake")


def test_failover_runs_litellm_with_its_default_retries_one_and_none(tmp_path: Path) -> None:
    ll = _fake_litellm(
        tmp_path,
        "{'num_retries': 2 if spec['num_retries'] is None else spec['num_retries'], "
        "'calls': len(spec['plan']), 'ok': 1, 'success_rate': 0.5, 'p50_ms': 1.0, "
        "'p99_ms': 2.0, 'throughput_rps': 3.0}",
    )
    ctx = Context(profile=SMOKE, workdir=tmp_path / "work", results=tmp_path, litellm=ll)
    section = _failover.run(ctx)
    rows = section.data["rows"]
    assert [name for name in rows if name.startswith("LiteLLM")] == [
        "LiteLLM Router, default retries (num_retries=2)",
        "LiteLLM Router, num_retries=1",
        "LiteLLM Router, num_retries=0",
    ]
    assert "retries the primary `num_retries` times" in section.markdown


def test_plots_are_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    assert _plots.available()
    gateway = {
        "points": [
            {
                "target": t,
                "mode": "closed",
                "concurrency": c,
                "throughput_rps": r,
                "p50_ms": 1.0 * c,
                "p99_ms": 2.0 * c,
            }
            for t, r in (("direct", 1000.0), ("gw", 300.0))
            for c in (1, 16)
        ]
    }
    memory = {
        "series": {"gw": {"points": [{"calls": 0, "rss_mib": 40}, {"calls": 10, "rss_mib": 41}]}}
    }
    learning = {"policies": {"oracle": {"cumulative_regret": [0.0, 0.0]}}}
    for path in (
        _plots.plot_latency_vs_load(gateway, tmp_path / "a.png"),
        _plots.plot_memory(memory, tmp_path / "b.png"),
        _plots.plot_regret(learning, tmp_path / "c.png"),
    ):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_flood_benchmark_counts_answers_and_refusals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``python -m benchmarks.flood`` at tiny sizes: a real gateway, clients sending again
    at once; 40 connections past its 16 jobs get refusals as well as answers."""
    from benchmarks import flood

    assert flood.main(["--seconds", "1", "--connections", "4,40"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]
    assert [r["connections"] for r in rows] == [4, 40]
    assert all(r["answers_per_s"] > 0 and r["other_errors"] == 0 for r in rows)
    assert rows[0]["of_peak"] == 1.0 and rows[1]["refusals_per_s"] > 0
