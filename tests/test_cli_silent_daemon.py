"""A daemon that takes the connection and says nothing (stopped with SIGSTOP, hung, or
another program on its port): ``run --stream`` and ``watch`` give up on the websocket
with a word and exit 2, as the HTTP commands give up on their requests. (They waited for
ever: trio-websocket's own connect timeout, in a nursery whose reader task never ends,
never ended them, and Ctrl-C was lost in it.)"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchman import _cli_live
from switchman.cli import main
from tests.test_cli import CLI, clean_env


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    taken: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                taken.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in taken:
            conn.close()
        listener.close()


# trio-websocket leaves the socket of a handshake cancelled midway to the garbage
# collector (a ResourceWarning); the command exits right after, so nothing is held
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    "args", [("run", "fast", "hi", "--stream"), ("watch", "--count", "1")], ids=["run", "watch"]
)
def test_a_silent_daemon_is_given_up_on(
    args: tuple[str, ...],
    silent_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(_cli_live, "CONNECT_S", 0.5)
    monkeypatch.delenv("SWITCHMAN_API_KEY", raising=False)
    started = time.monotonic()
    with pytest.raises(SystemExit) as exited:
        main([*args, "--port", str(silent_port)])
    assert exited.value.code == 2
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert f"127.0.0.1:{silent_port} did not take the websocket within 0.5s" in err


def test_run_waits_for_a_silent_daemon_no_longer_than_its_wait_and_ten_seconds(
    silent_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """(It gave the call's submission 30 s whatever ``--wait`` said.)"""
    monkeypatch.delenv("SWITCHMAN_API_KEY", raising=False)
    started = time.monotonic()
    with pytest.raises(SystemExit) as exited:
        main(["run", "fast", "hi", "--wait", "0", "--port", str(silent_port)])
    assert exited.value.code == 2
    assert 9.5 < time.monotonic() - started < 20
    err = capsys.readouterr().err
    assert "did not answer in 10s; if it took the call, switchman jobs lists it" in err


def test_a_host_no_name_service_knows_is_named_as_such(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """(It was told the daemon was not running there, with a serve command to start it.)"""
    with pytest.raises(SystemExit) as exited:
        main(["health", "--host", "nonexistent.invalid"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == "switchman: cannot find the host 'nonexistent.invalid': no address for it\n"


@pytest.mark.parametrize(
    "args", [("run", "fast", "hi", "--stream"), ("watch", "--count", "1")], ids=["run", "watch"]
)
def test_the_websocket_commands_name_a_host_no_name_service_knows(
    args: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*args, "--host", "nonexistent.invalid"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == "switchman: cannot find the host 'nonexistent.invalid': no address for it\n"


@pytest.mark.parametrize(
    "args", [("run", "fast", "hi", "--stream"), ("watch",)], ids=["run", "watch"]
)
def test_ctrl_c_while_the_websocket_connects_ends_the_command_at_once(
    args: tuple[str, ...], silent_port: int, tmp_path: Path
) -> None:
    """(trio-websocket's open caught the KeyboardInterrupt: the command went on waiting,
    and ended at the connect limit blaming the daemon.)"""
    client = subprocess.Popen(
        [*CLI, *args, "--port", str(silent_port)],
        env=clean_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)  # (connecting: the listener took the connection, says nothing)
        started = time.monotonic()
        client.send_signal(signal.SIGINT)
        code = client.wait(timeout=8)
        assert time.monotonic() - started < 3
    finally:
        client.kill()
        client.communicate()
    assert code == 130
