"""The README's configuration example is a configuration switchman loads as it says."""

from __future__ import annotations

from pathlib import Path

from switchman import load_config

README = Path(__file__).resolve().parent.parent / "README.md"


def _config_block() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("```toml", text.index("### Configuration")) + len("```toml")
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
    assert config.budgets.callers["batch-jobs"]["daily_usd"] == 2.0
    (key,) = config.keys
    assert (key.handle, key.rpm, key.daily_usd) == ("team-a", 60, 5.0)
