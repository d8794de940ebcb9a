"""The gateway as one ASGI application: routes, auth, jobs, the OpenAI wire.

Every route but ``/health`` needs a key when ``[[keys]]`` are configured (401
without a valid one, 403 when the key may not do this), and so does learning that a
path or a method is not served (404, 405: 401 before); a key sees only its
handle's jobs (another handle's job answers 404). A key with ``rpm`` is held to it on
``/call``, ``/v1/chat/completions`` and websocket calls (429 ``rate_limited``
with ``retry-after``, see ``_limits``). Errors are ``{error: {code, message,
details?}}``; on ``/v1`` routes they take OpenAI's shape instead (see
``_openai``; a 503 there says when to retry, see ``_causes``).

Requests are served in hypercorn's tasks; calls run as jobs in the job
nursery (see ``_jobs``), so a request that is cancelled leaves its job running and
stored (a ``/v1`` client that disconnects cancels its call: see ``_v1``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Final

import attrs
import trio

from switchman._call import INTENTS, Call
from switchman._convert import call_from_dict
from switchman._errors import FieldError, ValidationError
from switchman._result import Result
from switchman.gateway import _openai, _v1
from switchman.gateway._auth import (
    SEVERAL_KEYS,
    Principal,
    authenticate,
    bind_principal,
    call_patterns,
    knows,
    presented_key,
    presents_several_keys,
    target_problems,
    unknown_targets,
)
from switchman.gateway._causes import retry_headers, retry_hint, unrouted
from switchman.gateway._http import (
    ClientGone,
    HttpError,
    Message,
    Receive,
    Request,
    Scope,
    Send,
    invalid,
    send_json,
    send_text,
)
from switchman.gateway._jobs import (
    Draining,
    JobRunner,
    Overloaded,
    store_unavailable,
)
from switchman.gateway._limits import Holdings, KeyRates
from switchman.gateway._local import page_problem
from switchman.gateway._metrics import GatewayMetrics
from switchman.gateway._models_view import answered_by, model_list, not_serving
from switchman.gateway._openapi import openapi_document
from switchman.gateway._outbox import Outboxes
from switchman.gateway._protocol import RouterHandle
from switchman.gateway._status import (
    budget_entry,
    budget_figures,
    budget_limits,
    budget_scopes,
    global_left,
    health_body,
    providers_body,
    spending_callers,
)
from switchman.gateway._views import PlatformView
from switchman.gateway._ws import serve_websocket
from switchman.policy._candidates import (
    canonical_call,
    model_named,
    resolve_target,
    strictness_problems,
    unknown_capabilities,
    unknown_name,
)
from switchman.store import JOB_STATUSES, JobRecord, JobStatus, JobStore, StoreUnavailable

log = logging.getLogger("switchman.gateway")

#: longest ``?wait=`` accepted, seconds
MAX_WAIT_S: Final = 300.0
MAX_JOBS_LIMIT: Final = 1000
_PROMETHEUS_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

Handler = Callable[..., Awaitable[None]]

#: (method, path pattern, handler name); ``{name}`` matches one path segment, except the
#: names in ``_WHOLE_PATH``, which match the rest of the path (model ids have a ``/``)
ROUTES: Final = (
    ("POST", "/call", "post_call"),
    ("GET", "/result/{job_id}", "get_result"),
    ("GET", "/jobs", "get_jobs"),
    ("GET", "/health", "get_health"),
    ("GET", "/providers", "get_providers"),
    ("GET", "/budgets", "get_budgets"),
    ("POST", "/feedback/{job_id}", "post_feedback"),
    ("POST", "/v1/chat/completions", "post_chat_completions"),
    ("GET", "/v1/models", "get_models"),
    ("GET", "/v1/models/{model}", "get_model"),
    ("GET", "/metrics", "get_metrics"),
    ("GET", "/openapi.json", "get_openapi"),
    ("GET", "/ws", "websocket"),
)
#: ``?wait`` long-polls one team may hold at once (``Gateway._long_poll``)
POLLS_PER_KEY: Final = 256
_PUBLIC: Final = frozenset({"/health"})
#: the handlers that make a job of a call: one refused before its job counts in
#: ``switchman_calls_refused_total``
_CALLS: Final = frozenset({"post_call", "post_chat_completions"})
_WHOLE_PATH: Final = frozenset({"model"})
#: the failures a 503 tells a client when to retry (``_causes.retry_hint``)
_HINTED: Final = frozenset({"no_eligible_model", "rate_limited", "all_models_failed"})


def _compile(pattern: str) -> re.Pattern[str]:
    def param(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"(?P<{name}>{'.+' if name in _WHOLE_PATH else '[^/]+'})"

    return re.compile("^" + re.sub(r"\{(\w+)\}", param, pattern) + "$")


_COMPILED: Final = tuple((m, _compile(p), p, h) for m, p, h in ROUTES)
_V1_ROUTES: Final = ", ".join(f"{m} {p}" for m, p, _ in ROUTES if p.startswith("/v1/"))


def job_body(record: JobRecord, view: PlatformView | None = None) -> dict[str, Any]:
    """The public JSON of a job (``result`` only once it finished), its result as
    ``view`` shows it (see ``_views``; None: as stored)."""
    body: dict[str, Any] = {
        "job_id": record.job_id,
        "status": record.status,
        "handle": record.handle,
        "submitted_at": record.submitted_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
    }
    if record.reason is not None:
        body["reason"] = record.reason
    if record.finished and record.result is not None:
        body["result"] = record.result if view is None else view.result(record.result)
    return body


def shown(record: JobRecord, queued: frozenset[str], started: Mapping[str, float]) -> JobRecord:
    """``record`` as a client is shown it: stored ``running`` (each job is, from its
    submit: one write, not two), but ``queued`` while its call waits for one of the
    router's slots (``queued``), not started yet, and started when it took one
    (``started``: ``Router.queued_jobs``, ``started_jobs``)."""
    if record.status == "running":
        if record.job_id in queued:
            return attrs.evolve(record, status="queued", started_at=None)
        if (at := started.get(record.job_id)) is not None:
            return attrs.evolve(record, started_at=at)
    return record


def _job_summary(record: JobRecord) -> dict[str, Any]:
    body = job_body(record)
    result = body.pop("result", None)
    body["requested_model"] = record.call.get("model")
    answered = result if isinstance(result, Mapping) else {}
    body["model"] = answered.get("model")
    body["cost_usd"] = answered.get("cost_usd")
    # why a failed job failed, at a glance (its first error's code)
    errors = answered.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else None
    body["error_code"] = first.get("code") if isinstance(first, Mapping) else None
    if body["error_code"] is None and record.status == "failed":
        body["error_code"] = record.reason  # (the daemon stopped under it: no result)
    return body


def _shutting_down(message: str) -> HttpError:
    """503 ``shutting_down``: another instance (or this one restarted) may take it soon."""
    return HttpError(503, "shutting_down", message, headers=[(b"retry-after", b"1")])


class Gateway:
    """The ASGI app. ``wall_clock`` stamps OpenAI ``created`` fields (a model's is when
    the gateway started)."""

    def __init__(
        self,
        router: RouterHandle,
        store: JobStore,
        runner: JobRunner,
        metrics: GatewayMetrics,
        *,
        wall_clock: Callable[[], float] = time.time,
        check_host: bool = True,
        outboxes: Outboxes | None = None,
    ) -> None:
        """``check_host``: without keys, refuse requests addressed to other names than this
        machine's (False for a gateway bound beyond loopback on purpose, ``insecure``);
        ``outboxes``: what its websockets owe (``_outbox``), a new one when None."""
        self.router = router
        self.check_host = check_host
        self.config = router.config
        self.store = store
        self.runner = runner
        self.metrics = metrics
        self.wall_clock = wall_clock
        self.started = int(wall_clock())
        #: set once every job has finished during shutdown: websockets close then
        self.drained = trio.Event()
        self.rates = KeyRates()
        #: websockets open per team (a key's handle; None for the gateway without keys)
        self.sockets = Holdings()
        #: websockets opened without a key that are still to authenticate (``_ws_open``)
        self.awaiting_auth = 0
        #: what its websockets owe their clients, per team and per open socket (``_ws``)
        self.outboxes = outboxes or Outboxes()
        #: ``?wait`` long-polls held per team (``_long_poll``)
        self.polls = Holdings()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match scope["type"]:
            case "http":
                await self._http(scope, receive, send)
            case "websocket":
                await serve_websocket(self, scope, receive, send)
            case "lifespan":
                await _lifespan(receive, send)

    # -- plumbing -----------------------------------------------------------------------------

    def refuse_pages(self, scope: Scope) -> None:
        """Without keys, ``HttpError(403)`` for a web page not of this machine, or a request
        addressed to another name (see ``_local``)."""
        if not self.config.keys:
            problem = page_problem(
                scope.get("headers", ()), target=scope.get("path", ""), check_host=self.check_host
            )
            if problem is not None:
                raise HttpError(403, "forbidden", problem)

    def authenticate(self, headers: Mapping[str, str]) -> Principal | None:
        return authenticate(self.config.keys, presented_key(headers))

    def view(self, principal: Principal) -> PlatformView:
        """Results as ``principal`` may see them (see ``_views``)."""
        return PlatformView(principal, self.config)

    def shown_error(self, err: HttpError, result: Result, principal: Principal) -> HttpError:
        """A failed call's ``/v1`` error with its message as ``principal`` may read it (its
        status and code are decided on the whole result)."""
        view = self.view(principal)
        if not view.limited:
            return err
        trace = result.trace
        swaps = view.replacements(
            [{"alias": e.alias, "reason": e.reason} for e in trace.eligibility.excluded],
            [
                {"provider": a.provider, "outcome": a.outcome, "error": a.error}
                for a in trace.attempts
            ],
        )
        message = view.text(err.message, swaps)
        if message == err.message:
            return err
        return HttpError(
            err.status,
            err.code,
            message,
            details=err.details,
            param=err.param,
            headers=err.headers,
        )

    def _route(self, req: Request) -> tuple[str, str, dict[str, str]]:
        allowed: list[str] = []
        for method, regex, pattern, name in _COMPILED:
            match = regex.match(req.path)
            if match is None:
                continue
            if method == req.method or (req.method == "HEAD" and method == "GET"):
                return pattern, name, match.groupdict()
            allowed.append(method)
            if method == "GET":
                allowed.append("HEAD")  # (a GET route answers HEAD too)
        if allowed:
            raise HttpError(
                405,
                "method_not_allowed",
                f"{req.method} is not allowed on {req.path}",
                headers=[(b"allow", ", ".join(allowed).encode())],
            )
        if req.path.startswith("/v1/") or req.path == "/v1":
            raise HttpError(
                404, "not_found", f"no route {req.path}; the /v1 routes served: {_V1_ROUTES}"
            )
        raise HttpError(404, "not_found", f"no route {req.path}")

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        req = Request(scope, receive)
        started = False
        status = 500
        route = "unknown"
        calling = False

        head = req.method == "HEAD"

        async def tracked(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
            elif head and message["type"] == "http.response.body":
                # HEAD: the GET's status and headers (its content-length too), no body
                message = {**message, "body": b""}
            await send(message)

        openai = req.path.startswith("/v1/")
        try:
            self.refuse_pages(scope)
            try:
                route, name, params = self._route(req)
            except HttpError:  # 404, 405: with keys, only to a valid key (no mapping routes)
                if req.path not in _PUBLIC:
                    self._principal(req, public=False)
                raise
            principal = self._principal(req, public=route in _PUBLIC)
            handler: Handler = getattr(self, name)
            calling = name in _CALLS
            await handler(req, tracked, principal, **params)
        except HttpError as err:
            if calling and req.job_id is None:
                self.metrics.refused.labels(code=err.code[:100]).inc()
            if not started:
                body = _openai.error_body(err) if openai else err.body()
                with contextlib.suppress(ClientGone):  # (the answer goes out all the same)
                    await req.drain(self.config.server.max_body_bytes)
                await send_json(tracked, err.status, body, err.headers)
        except ClientGone:
            status = 499
        except StoreUnavailable as exc:  # a read or write the store cannot do now (logged there)
            if not started:
                down = store_unavailable(exc)
                body = _openai.error_body(down) if openai else down.body()
                await send_json(tracked, 503, body, down.headers)
        except Exception:
            log.exception("%s %s failed", req.method, req.path)
            if not started:
                oops = HttpError(500, "internal_error", "internal error")
                body = _openai.error_body(oops) if openai else oops.body()
                await send_json(tracked, 500, body)
        finally:
            self.metrics.http_requests.labels(route=route, status=str(status)).inc()

    def _principal(self, req: Request, *, public: bool) -> Principal:
        if presents_several_keys(req.scope.get("headers", ())):
            raise HttpError(400, "bad_request", SEVERAL_KEYS)
        principal = self.authenticate(req.headers)
        if principal is None:
            if public:
                return Principal(key_id="", handle="", admin=False, models=())
            raise HttpError(
                401,
                "unauthorized",
                "a valid gateway key is required (Authorization: Bearer <key> or x-api-key)",
                headers=[(b"www-authenticate", b"Bearer")],
            )
        return principal

    def take_request(self, principal: Principal) -> None:
        """Count a call against its key's ``rpm`` (429 over it, see ``_limits``); once the
        call is one the key may make: one refused for itself is told why, and counts not."""
        self.rates.check(principal, trio.current_time())

    def parse_call(self, raw: Any, principal: Principal | None = None) -> Call:
        """A ``Call`` from its JSON; ``ValidationError`` naming every bad field, an unknown
        model among them (worded as :meth:`admit` words it for an otherwise valid call)."""
        try:
            return call_from_dict(raw)
        except ValidationError as exc:
            named = {f.field for f in exc.fields}
            unknown = [
                FieldError(field, message)
                for field, message in unknown_targets(raw, self.config, principal)
                if field not in named
            ]
            raise ValidationError([*exc.fields, *unknown]) from None

    def admit(self, call: Call, principal: Principal) -> Call:
        """The call as this caller may submit it: known models (one named by its provider's
        id is renamed to its alias), allowed ones, its handle."""
        call = canonical_call(call, self.config, knows(principal, self.config))
        unknown, denied = target_problems(principal, call, self.config)
        unknown += [(error.field, error.message) for error in strictness_problems(call)]
        if call.capabilities:
            usable = knows(principal, self.config)
            for error in unknown_capabilities(call.capabilities, self.config, usable):
                unknown.append((error.field, error.message))
        if unknown:
            raise invalid(unknown)
        if denied:
            details = [{"field": f, "message": m} for f, m in denied]
            raise HttpError(
                403, "permission_denied", "; ".join(m for _, m in denied), details=details
            )
        return bind_principal(call, principal)

    async def submit(self, call: Call, principal: Principal, **kw: Any) -> str:
        try:
            return await self.runner.submit(call, owner=principal.owner, **kw)
        except Draining:
            # another instance (or this one restarted) may take it in a moment
            raise _shutting_down("the gateway is shutting down; retry shortly") from None
        except Overloaded as full:
            message = full.said or "too many calls in flight; retry shortly"
            if full.owner_full is not None:
                message = (
                    f"this key's team has {full.owner_full} calls in flight, half of what the"
                    " gateway runs at once; retry when some finish"
                )
            # the connection closed: a flood of clients that ignore retry-after waits in
            # the kernel's accept queue, not among the connections the server runs (each
            # of those costs every call a share of each pass of the event loop: 1,000 of
            # them took goodput to 7% of its peak, and it stays near the peak this way)
            closing = [(b"retry-after", b"1"), (b"connection", b"close")]
            raise HttpError(503, "overloaded", message, headers=closing) from None

    async def visible_job(self, job_id: str, principal: Principal) -> JobRecord:
        record = await self.store.get_job(job_id)
        if record is None or not principal.owns(record.owner):
            raise HttpError(404, "not_found", f"no job {job_id}")
        return shown(record, self.router.queued_jobs(), self.router.started_jobs())

    async def _jobs(
        self, principal: Principal, status: JobStatus | None, limit: int
    ) -> list[JobRecord]:
        """The newest ``limit`` jobs ``principal`` sees, of ``status``, as ``shown``: a
        running job whose call waits for a router slot is ``queued``."""
        queued = self.router.queued_jobs()
        stored: JobStatus | None = "running" if status == "queued" and queued else status
        records = await self.store.list_jobs(
            owner=principal.owner,
            all_owners=principal.sees_everything,
            status=stored,
            limit=limit + len(queued) if status in ("queued", "running") else limit,
        )
        if status == "queued" and queued:  # (none is stored queued: each starts running)
            records += await self.store.list_jobs(
                owner=principal.owner,
                all_owners=principal.sees_everything,
                status="queued",
                limit=limit,
            )
            records.sort(key=lambda r: r.submitted_at, reverse=True)
        started = self.router.started_jobs()
        records = [shown(r, queued, started) for r in records]
        if status is not None:
            records = [r for r in records if r.status == status]
        return records[:limit]

    def _wait(self, req: Request) -> float:
        return req.query_number("wait", low=0, high=MAX_WAIT_S) or 0.0

    @contextlib.contextmanager
    def _long_poll(self, principal: Principal) -> Iterator[bool]:
        """Whether this ``?wait`` may wait: a team (a key's handle) holds at most
        ``POLLS_PER_KEY`` waits at once, and past them one answers at once, as if its wait
        had run out (each held wait is a task and a connection: one key must not take the
        gateway's memory). The gateway without keys is one caller: not bounded."""
        owner = principal.owner
        if owner is not None and self.polls.held(owner) >= POLLS_PER_KEY:
            yield False
            return
        with self.polls.holding(owner):
            yield True

    # -- jobs ---------------------------------------------------------------------------------

    async def post_call(self, req: Request, send: Send, principal: Principal) -> None:
        wait = self._wait(req)
        body = await req.json(self.config.server.max_body_bytes)
        try:
            call = self.parse_call(body, principal)
        except ValidationError as exc:
            raise invalid((f.field, f.message) for f in exc.fields) from None
        call = self.admit(call, principal)
        self.take_request(principal)
        job_id = req.job_id = await self.submit(call, principal)
        location = [(b"location", f"/result/{job_id}".encode())]
        if wait > 0:
            with self._long_poll(principal) as may_wait, trio.move_on_after(wait):
                if may_wait:
                    await self.runner.wait(job_id)
            record = await self.store.get_job(job_id)
            if record is not None:
                record = shown(record, self.router.queued_jobs(), self.router.started_jobs())
            if record is not None and record.finished:
                await send_json(send, 200, job_body(record, self.view(principal)), location)
                return
            status = record.status if record is not None else "queued"
            await send_json(send, 202, {"job_id": job_id, "status": status}, location)
            return
        await send_json(send, 202, {"job_id": job_id, "status": "queued"}, location)

    async def get_result(self, req: Request, send: Send, principal: Principal, job_id: str) -> None:
        wait = self._wait(req)
        record = await self.visible_job(job_id, principal)
        if not record.finished and wait > 0:
            with self._long_poll(principal) as may_wait, trio.move_on_after(wait):
                if may_wait:
                    await self.runner.wait(job_id)
            record = await self.visible_job(job_id, principal)
        await send_json(send, 200, job_body(record, self.view(principal)))

    async def get_jobs(self, req: Request, send: Send, principal: Principal) -> None:
        status = req.query.get("status") or None
        problems: list[tuple[str, str]] = []
        if status is not None and status not in JOB_STATUSES:
            problems.append(("status", f"must be one of {', '.join(JOB_STATUSES)}"))
        limit = 50
        raw = req.query.get("limit")
        if raw is not None:
            # (ASCII digits alone: ``isdigit`` also takes "²" and "①", which int() refuses)
            digits = raw.isascii() and raw.isdigit() and len(raw) <= 9
            if not digits or not 1 <= int(raw) <= MAX_JOBS_LIMIT:
                problems.append(("limit", f"must be an integer between 1 and {MAX_JOBS_LIMIT}"))
            else:
                limit = int(raw)
        if problems:
            raise invalid(problems)
        records = await self._jobs(principal, status, limit)  # type: ignore[arg-type]
        await send_json(send, 200, {"jobs": [_job_summary(r) for r in records]})

    async def post_feedback(
        self, req: Request, send: Send, principal: Principal, job_id: str
    ) -> None:
        body = await req.json(self.config.server.max_body_bytes)
        if not isinstance(body, dict):
            raise invalid([("body", "must be a JSON object")])
        problems = [(str(k), "unknown field") for k in body if k not in ("score", "intent")]
        score = body.get("score")
        if "score" not in body:
            problems.append(("score", "is required"))
        elif isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
            problems.append(("score", "must be a number between 0 and 1"))
        intent = body.get("intent")
        if intent is not None and not isinstance(intent, str):
            problems.append(("intent", "must be a string"))
        elif intent is not None and intent not in INTENTS:
            problems.append(("intent", f"must be one of {', '.join(sorted(INTENTS))}"))
        if problems:
            raise invalid(problems)
        record = await self.visible_job(job_id, principal)
        result = record.result or {}
        call_id = result.get("call_id") if record.finished else None
        if record.status == "failed":
            raise HttpError(
                409, "not_answered", f"job {job_id} failed: no model answered it, nothing to rate"
            )
        if not call_id:
            raise HttpError(409, "not_finished", f"job {job_id} has no answered call to rate yet")
        call_intent = record.call.get("intent")
        if not isinstance(call_intent, str):
            call_intent = "unknown"
        if intent is not None and intent != call_intent and call_intent != "unknown":
            # an unclassified call may be classified now; a classified one keeps its kind,
            # or one caller's rating could reach another kind of call's statistics
            raise invalid(
                [("intent", f"job {job_id} was a {call_intent!r} call; its intent is kept")]
            )
        # once per job, kept with the job so that it holds across restarts too; the job
        # also says who answered, so a router restarted since can still credit it
        if not await self.store.mark_rated(job_id):
            raise HttpError(409, "already_rated", f"job {job_id} was already rated: it counts once")
        model = result.get("model")
        counted = False
        try:
            await self.router.feedback(
                call_id,
                float(score),  # type: ignore[arg-type]  # (checked above: a number)
                intent=intent or call_intent,
                model=answered_by(result, self.config),
            )
            counted = True
        except ValidationError as exc:  # e.g. an intent switchman does not know
            raise invalid((f.field, f.message) for f in exc.fields) from None
        except trio.ClosedResourceError:  # (RouterClosed: a stop began meanwhile)
            raise _shutting_down(
                "the gateway is shutting down; the job stays unrated, rate it again shortly"
            ) from None
        except KeyError:
            raise HttpError(
                404,
                "not_found",
                f"the model that answered job {job_id} ({model}) is not in service here: no"
                " longer configured, or its provider disabled (rate it once it is back)",
            ) from None
        finally:
            if not counted:  # (however it failed: a crash, the client gone) rateable again
                with trio.CancelScope(shield=True):
                    await self.store.unmark_rated(job_id)
        await send_json(send, 200, {"job_id": job_id, "call_id": call_id, "score": score})

    # -- state --------------------------------------------------------------------------------

    async def get_health(self, req: Request, send: Send, principal: Principal) -> None:
        """The status for anyone (a load balancer's probe needs no key); the providers,
        models, breakers and job counts behind it for an admin key (or without keys)."""
        full = principal.sees_everything
        jobs = await self.store.job_counts() if full else {}
        if jobs and (queued := len(self.router.queued_jobs())):  # (stored running: see shown)
            queued = min(queued, jobs.get("running", 0))
            jobs = jobs | {"running": jobs["running"] - queued, "queued": jobs["queued"] + queued}
        body = health_body(
            self.router.status(),
            jobs=jobs,
            jobs_in_flight=self.runner.in_flight,
            draining=self.runner.draining,
            store_problem=self.store.problem,
            budget_left=await global_left(self.router, self.config),
        )
        if not full:
            body = {"status": body["status"]}
        await send_json(send, 503 if body["status"] == "draining" else 200, body)

    async def get_providers(self, req: Request, send: Send, principal: Principal) -> None:
        body = providers_body(self.config, self.router.status(), principal, now=trio.current_time())
        await send_json(send, 200, body)

    async def get_budgets(self, req: Request, send: Send, principal: Principal) -> None:
        """Spend this hour, day and month per scope, with its limits and what is left: every
        scope for an admin (or a gateway without keys), a key's own otherwise."""
        limits = budget_limits(self.config)
        spent_by: set[str] = set()
        spent_at: set[str] = set()
        if principal.sees_everything:  # callers and providers with spend, some removed since
            stored, now = await self.store.load_spend(), self.wall_clock()
            spent_by = spending_callers(stored, wall_now=now)
            spent_at = spending_callers(stored, wall_now=now, kind="provider")
        scopes = budget_scopes(self.config, principal, spent_by=spent_by, spent_at=spent_at)
        budgets = [
            budget_entry(scope, await self.router.spend(scope), limits.get(scope, {}))
            for scope in scopes
        ]
        await send_json(send, 200, {"budgets": budgets})

    async def get_metrics(self, req: Request, send: Send, principal: Principal) -> None:
        if not principal.sees_everything:  # every model's and provider's figures
            raise HttpError(
                403, "permission_denied", "/metrics shows every team's traffic: use an admin key"
            )
        budgets = await budget_figures(self.router, self.config)
        status, jobs = self.router.status(), self.runner.in_flight
        text = self.metrics.render(status, jobs_in_flight=jobs, budgets=budgets)
        await send_text(send, 200, text.decode(), _PROMETHEUS_TYPE)

    async def get_openapi(self, req: Request, send: Send, principal: Principal) -> None:
        await send_json(send, 200, openapi_document())

    async def websocket(self, req: Request, send: Send, principal: Principal) -> None:
        raise HttpError(426, "upgrade_required", "/ws speaks WebSocket only")

    # -- OpenAI-compatible --------------------------------------------------------------------

    async def get_models(self, req: Request, send: Send, principal: Principal) -> None:
        await send_json(
            send, 200, {"object": "list", "data": model_list(self.config, principal, self.started)}
        )

    async def get_model(self, req: Request, send: Send, principal: Principal, model: str) -> None:
        """One entry of ``/v1/models`` (the SDK's ``models.retrieve``; a provider's own id of
        one model finds it, as a call's does); 404 for any other, saying why."""
        named = model_named(model, self.config, knows(principal, self.config))
        for entry in model_list(self.config, principal, self.started):
            if entry["id"] == named:
                await send_json(send, 200, entry)
                return
        if resolve_target(named, self.config) is None:
            said = self.no_model(model, principal)
        else:  # known, but not listed: not this key's, or nothing of it is in service
            _, denied = target_problems(principal, Call(prompt="?", model=named), self.config)
            if denied:
                said = denied[0][1]
            elif named == "auto":
                said = "auto cannot answer now (no model this key may use is in service)"
            else:
                said = not_serving(self.config, named, principal)
            said = f"{said} (GET /v1/models lists the ones this key may use)"
        raise HttpError(404, "model_not_found", said, param="model")

    def no_model(self, name: str, principal: Principal) -> str:
        said = unknown_name(name, self.config, usable=knows(principal, self.config))
        return f"{said} (GET /v1/models lists the ones this key may use)"

    def failure(self, result: Result, call: Call, principal: Principal) -> HttpError:
        """The ``/v1`` error for a failed call, its message as ``principal`` may read it."""
        return self.shown_error(self._whole_failure(result, call, principal), result, principal)

    def _whole_failure(self, result: Result, call: Call, principal: Principal) -> HttpError:
        """The ``/v1`` error for a failed call (``_openai.failure``); a 503 that may
        pass says when to retry (``_causes``).

        A 403 for models the key may not use becomes a 503 when the key may use other
        models the call could reach, which the router did not consider: their providers
        are out of service (``auto`` skips those without a word)."""
        err = _openai.failure(result)
        denied = err.status == 403 and bool(unrouted(result))
        if not denied and (err.status != 503 or err.code not in _HINTED):
            return err
        wait = retry_hint(
            result,
            call,
            self.config,
            self.router.status(),
            allowed=call_patterns(principal, call, self.config),
            now=trio.current_time(),
        )
        if denied:
            if wait is None:
                return err
            err = HttpError(
                503,
                "no_eligible_model",
                "no eligible model: none of the models this key may use is in service",
            )
        hints = tuple(retry_headers(wait))
        if not hints:
            return err
        return HttpError(
            err.status,
            err.code,
            err.message,
            details=err.details,
            param=err.param,
            headers=[*err.headers, *hints],
        )

    async def post_chat_completions(self, req: Request, send: Send, principal: Principal) -> None:
        await _v1.post_chat_completions(self, req, send, principal)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
