"""The documentation's configuration examples load as they say (a server of one's own
answers a call without a key), its table of trace events is what the router publishes, and
every link between the README and the docs leads somewhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h11
import trio

import switchman
from switchman import Call, load_config
from tests._rawhttp import serve_answers

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
HTTP_API = DOCS / "http-api.md"


def _config_block() -> str:
    text = CONFIGURATION.read_text(encoding="utf-8")
    start = text.index("```toml", text.index("# Configuration")) + len("```toml")
    return text[start : text.index("```", start)]


def test_the_configuration_example_loads_with_what_it_says(tmp_path: Path) -> None:
    path = tmp_path / "switchman.toml"
    path.write_text(_config_block(), encoding="utf-8")
    env = {"SWITCHMAN_KEY_TEAM_A": "team-a-secret-0001", "OPENAI_API_KEY": "sk-test-0001"}
    config = load_config(path, env=env)
    assert config.router.capacity == 1024 and config.router.stall_ms == 15_000
    openai = config.providers["openai"]
    assert (openai.rpm, openai.tpm, openai.disabled_reason) == (500, 200_000, None)
    fast = config.models["luna-fast"]
    assert fast.capabilities == ("code", "reason") and fast.context_window == 272_000
    assert config.routes["claude"].chain[-1] == "luna-fast"
    assert config.routes["gpt-fast"].chain  # (the built-in route, not hidden by the model)
    assert config.budgets.global_daily_usd == 50.0
    assert config.budgets.providers["openai"]["daily_usd"] == 20.0
    assert config.budgets.callers["team-a"]["daily_usd"] == 2.0
    (key,) = config.keys
    assert (key.handle, key.rpm, key.daily_usd) == ("team-a", 60, 5.0)


def _event_table() -> dict[str, set[str]]:
    """The websocket's table of trace events: each type and the data keys it names."""
    text = HTTP_API.read_text(encoding="utf-8")
    start = text.index("| type | data |")
    rows = text[start : text.index("\n\n", start)].splitlines()[2:]
    table = {}
    for row in rows:
        _, kind, said, _ = row.split("|")
        data = re.sub(r"\([^)]*\)", "", said)  # (what each holds, said in brackets)
        # the keys are the first backquoted word of each comma-separated part
        keys = {p.split("`")[1].split(":")[0] for p in re.split(r",|;| and ", data) if "`" in p}
        table[kind.strip().strip("`")] = keys
    return table


async def test_the_trace_events_carry_the_data_the_readme_says(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Every event a run of calls publishes (plain, streamed, failed, budgeted, a breaker
    opening) has exactly the data keys the table gives its type, at most."""
    from switchman.catalog import BudgetsConfig, SimProfile

    from ._simfleet import drained, fleet, sim_model

    table = _event_table()
    down = sim_model("down", SimProfile(error_rate=1.0))
    config = fleet(sim_model("good"), down, budgets=BudgetsConfig(global_daily_usd=10.0))
    seen: dict[str, set[str]] = {}
    async with switchman.open_router(config) as router:
        events = router.subscribe(buffer=10_000)
        for _ in range(6):
            await router.call(Call(prompt="hi", model="down"))
            async with router.stream(Call(prompt="hi", model="good")) as replies:
                async for _item in replies:
                    pass
        await trio.sleep(1)
        for event in drained(events):
            seen.setdefault(event.type, set()).update(event.data)
    assert set(seen) <= set(table), set(seen) - set(table)
    for kind, keys in seen.items():
        assert keys <= table[kind], (kind, keys - table[kind])
    told = {"call.accepted", "call.routed", "attempt.started", "attempt.delta", "call.failed"}
    assert told | {"attempt.finished", "call.completed", "breaker.changed"} <= set(seen)
    assert seen["breaker.changed"] == table["breaker.changed"]
    assert seen["attempt.finished"] == table["attempt.finished"]


async def test_a_server_of_ones_own_as_the_readme_configures_it_answers_without_a_key(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    start = text.index("```toml", text.index("## A server of your own")) + len("```toml")
    sent: list[h11.Request] = []

    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        sent.append(head)
        reply = {
            "id": "x",
            "object": "chat.completion",
            "model": json.loads(body)["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hi."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }
        return 200, [("content-type", "application/json")], json.dumps(reply).encode()

    base_url = await nursery.start(serve_answers, answer)
    block = text[start : text.index("```", start)].replace("http://127.0.0.1:8000", base_url)
    path = tmp_path / "switchman.toml"
    path.write_text(block, encoding="utf-8")
    config = load_config(path, env={})
    with trio.fail_after(20):
        async with switchman.open_router(config, env={}) as router:
            result = await router.call(Call(prompt="Say hi", model="my-llama"))
    assert result.status == "complete" and result.answer == "Hi.", result.errors
    assert (result.model, result.provider, result.cost_usd) == ("my-llama", "vllm", 0.0)
    (head,) = sent
    assert head.target == b"/v1/chat/completions"
    assert b"authorization" not in {name.lower() for name, _ in head.headers}


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped but hyphens,
    spaces made hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return "".join(part for i, part in enumerate(text.split("```")) if i % 2 == 0)


def test_every_link_between_the_readme_and_the_docs_leads_somewhere() -> None:
    """Each relative link names a file that exists and, with a #fragment, a heading in it;
    the README links every page of docs/."""
    pages = [README, *sorted(DOCS.glob("*.md"))]
    anchors = {
        page.resolve(): {
            _slug(line.lstrip("#"))
            for line in _prose(page.read_text()).splitlines()
            if line[:1] == "#"
        }
        for page in pages
    }
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", _prose(page.read_text(encoding="utf-8"))):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            path, _, fragment = target.partition("#")
            where = (page.parent / path).resolve() if path else page.resolve()
            if not where.exists() or (fragment and fragment not in anchors.get(where, set())):
                broken.append(f"{page.name}: {target}")
    assert broken == []
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)", README.read_text(encoding="utf-8")))
    assert linked == {p.name for p in DOCS.glob("*.md")}
