"""LiteLLM, measured in the same run: its own virtual environment, runner and proxy.

LiteLLM's dependencies clash with switchman's (it pins its own httpx, openai,
pydantic...), so it lives in ``benchmarks/.venv-litellm``, created on first use
with ``python -m venv`` and ``pip install "litellm[proxy]"`` (never committed).
Its in-process scenarios run ``_litellm_runner.py`` with that venv's Python;
its proxy runs as ``litellm --config ... --num_workers 1`` from that venv.
``LITELLM_LOCAL_MODEL_COST_MAP`` is set so it never reaches for the network.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from benchmarks._configs import LITELLM_MASTER_KEY, litellm_proxy_yaml
from benchmarks._procs import Child, free_port, run_child

HERE: Final = Path(__file__).resolve().parent
VENV: Final = HERE / ".venv-litellm"
RUNNER: Final = HERE / "_litellm_runner.py"
REQUIREMENT: Final = "litellm[proxy]"
ENV: Final = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
}
#: uvicorn logging without the per-request access log (switchman's gateway has none either)
_QUIET_LOGS: Final = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"err": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "uvicorn": {"handlers": ["err"], "level": "WARNING"},
        "uvicorn.error": {"level": "WARNING"},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


@attrs.frozen(kw_only=True)
class LiteLLM:
    """A usable LiteLLM install: its venv's Python and version."""

    python: Path
    version: str

    @property
    def cli(self) -> Path:
        return self.python.parent / "litellm"


class Unavailable(RuntimeError):
    """LiteLLM cannot be set up or run here; the message says why."""


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version; print(version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure(venv: Path = VENV, *, log: Path | None = None) -> LiteLLM:
    """The LiteLLM venv, created and installed first if needed (about a minute, once).

    Raises ``Unavailable`` with pip's last words when it cannot be installed.
    """
    python = _venv_python(venv)
    version = _installed_version(python)
    if version is not None:
        return LiteLLM(python=python, version=version)
    print(f"  setting up LiteLLM in {venv} (first use only)...", flush=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", REQUIREMENT],
    ]
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8") as f:
                f.write(done.stdout + done.stderr)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
            raise Unavailable(f"{' '.join(argv[:4])} failed: {tail}")
    version = _installed_version(python)
    if version is None:
        raise Unavailable("litellm installed but cannot be imported")
    return LiteLLM(python=python, version=version)


def run_runner(ll: LiteLLM, spec: Mapping[str, Any], workdir: Path, *, timeout_s: float) -> Any:
    """Run ``_litellm_runner.py`` with ``spec`` in LiteLLM's venv; its JSON result."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / f"litellm-{spec['mode']}-spec.json"
    out_path = workdir / f"litellm-{spec['mode']}-out.json"
    spec_path.write_text(json.dumps(spec), "utf-8")
    done = subprocess.run(
        [str(ll.python), str(RUNNER), str(spec_path), str(out_path)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **ENV},
        cwd=workdir,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise Unavailable(f"the LiteLLM runner failed ({spec['mode']}): {tail}")
    return json.loads(out_path.read_text("utf-8"))


@contextlib.contextmanager
def proxy(
    ll: LiteLLM,
    workdir: Path,
    upstream_url: str,
    models: Mapping[str, str],
    *,
    fallbacks: Mapping[str, Sequence[str]] | None = None,
) -> Iterator[Child]:
    """LiteLLM's proxy server, one uvicorn worker, on a free loopback port."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "litellm.yaml"
    config.write_text(litellm_proxy_yaml(upstream_url, models, fallbacks=fallbacks), "utf-8")
    log_config = workdir / "litellm-logging.json"
    log_config.write_text(json.dumps(_QUIET_LOGS), "utf-8")
    port = free_port()
    argv = [
        str(ll.cli),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
        "--log_config",
        str(log_config),
    ]
    with run_child("litellm-proxy", argv, workdir, env=ENV, port=port, ready_timeout_s=90) as c:
        yield c


def auth_headers() -> dict[str, str]:
    """What a client of the proxy sends."""
    return {"authorization": f"Bearer {LITELLM_MASTER_KEY}"}
