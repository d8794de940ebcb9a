"""What a supervisor is told about its children, what it reports, and how it gives up.

A :class:`ChildSpec` says how to start a child, when to restart it and how to stop
it. :func:`~switchman.supervisor.run_supervisor` reports each child in a frozen
:class:`ChildStatistics`; when restarts come too fast it stops everything and raises
:class:`SupervisorEscalation` to its parent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

import attrs

from switchman._errors import SwitchmanError

#: ``permanent``: restarted after any exit; ``transient``: restarted only after a crash
#: (an exception, including one raised before ``task_status.started``); ``temporary``:
#: never restarted.
Restart = Literal["permanent", "transient", "temporary"]

#: Why a child last stopped running:
#: ``normal``: it returned on its own; ``crash``: it raised an exception (or its start
#: did); ``shutdown``: it returned after the supervisor asked it to stop;
#: ``killed``: the supervisor cancelled it (no way to ask, or the grace ran out).
ExitReason = Literal["normal", "crash", "shutdown", "killed"]


@attrs.frozen(kw_only=True)
class ChildSpec:
    """How to run one child of a supervisor.

    ``start`` is called as ``await start(task_status=...)`` and must call
    ``task_status.started(handle)`` once it is ready; ``handle`` is what
    ``Supervisor.handle(id)`` returns until the child next exits (often the send side
    of its inbox). A nested supervisor is ``functools.partial(run_supervisor, name, specs)``.

    ``stop`` asks a running child to finish (for instance by closing its inbox's send
    side); it may return an awaitable, which is awaited within the grace. The
    supervisor then waits up to ``shutdown_s`` for the child to return and cancels it
    after that. With ``stop=None`` the child is cancelled at once, except a nested
    supervisor (its handle is a ``Supervisor``), which is asked with its own
    ``shutdown()`` so its children get their graces too.

    ``on_crash`` is called with the exception each time the child crashes (before
    any restart); an exception from the hook is logged and otherwise ignored.
    """

    id: str = attrs.field(validator=attrs.validators.min_len(1))
    start: Callable[..., Awaitable[object]]
    restart: Restart = attrs.field(
        default="permanent",
        validator=attrs.validators.in_(("permanent", "transient", "temporary")),
    )
    shutdown_s: float = attrs.field(default=5.0, validator=attrs.validators.ge(0.0))
    stop: Callable[[], object] | None = None
    on_crash: Callable[[BaseException], object] | None = None


@attrs.frozen(kw_only=True)
class ChildStatistics:
    """One child as its supervisor sees it.

    ``restarts``: how many times the supervisor has started it again (a restart whose
    start failed counts too). ``last_error``: ``"Type: message"`` of the crash when
    ``last_exit`` is ``"crash"``, else None.
    """

    id: str
    running: bool
    restarts: int
    last_exit: ExitReason | None
    last_error: str | None


@attrs.frozen(kw_only=True)
class SupervisorStatistics:
    """A snapshot of a supervisor: its children in start order."""

    name: str
    children: tuple[ChildStatistics, ...]

    def child(self, child_id: str) -> ChildStatistics:
        """The statistics of ``child_id``; ``KeyError`` if there is no such child."""
        for child in self.children:
            if child.id == child_id:
                return child
        raise KeyError(child_id)


class SupervisorEscalation(SwitchmanError):
    """A supervisor gave up: its children restarted more often than its intensity allows
    (a ``SwitchmanError``: ``except switchman.SwitchmanError`` catches all switchman raises).

    Raised by ``run_supervisor`` after it has stopped its remaining children.
    ``supervisor`` is its name, ``child_id`` the child whose exit was one restart too
    many; the child's last exception, if it raised one, is ``__cause__``. To a parent
    supervisor this is just a crash of the child that is the nested supervisor.
    """

    code = "internal_error"

    def __init__(self, supervisor: str, child_id: str) -> None:
        super().__init__(supervisor, child_id)
        self.supervisor = supervisor
        self.child_id = child_id

    def __str__(self) -> str:
        return (
            f"supervisor {self.supervisor!r} gave up: "
            f"restart intensity exceeded by child {self.child_id!r}"
        )
