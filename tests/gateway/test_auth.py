from __future__ import annotations

import pytest

from switchman._call import Call, Caller, Options
from switchman.catalog import KeySpec
from switchman.gateway._auth import (
    OPEN,
    authenticate,
    bind_principal,
    call_patterns,
    granted_routes,
    may_reach,
    model_allowed,
    presented_key,
    target_problems,
)
from tests.gateway._fakes import KEYS, make_config

CONFIG = make_config(keys=KEYS)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"authorization": "Bearer abc"}, "abc"),
        ({"authorization": "bearer  abc "}, "abc"),
        ({"x-api-key": "xyz"}, "xyz"),
        ({"authorization": "Basic abc", "x-api-key": "xyz"}, "xyz"),
        ({"authorization": "Bearer "}, None),
        ({}, None),
    ],
)
def test_presented_key(headers: dict[str, str], expected: str | None) -> None:
    assert presented_key(headers) == expected


def test_without_keys_everyone_is_the_open_principal() -> None:
    assert authenticate((), None) is OPEN
    assert authenticate((), "whatever") is OPEN
    assert OPEN.sees_everything and OPEN.owns("anyone")


def test_authenticate_matches_the_right_key_only() -> None:
    a = authenticate(KEYS, "secret-a")
    assert a is not None and (a.key_id, a.handle, a.admin) == ("KEY_A", "team-a", False)
    ops = authenticate(KEYS, "secret-ops")
    assert ops is not None and ops.admin and ops.sees_everything
    assert authenticate(KEYS, "secret-") is None
    assert authenticate(KEYS, "secret-a ") is None
    assert authenticate(KEYS, None) is None


def test_a_key_whose_secret_is_unset_never_matches() -> None:
    keys = (KeySpec(key_env="UNSET", handle="x", secret=None),)
    assert authenticate(keys, "") is None
    assert authenticate(keys, "anything") is None


def test_ownership_and_event_visibility() -> None:
    a = authenticate(KEYS, "secret-a")
    assert a is not None
    # jobs are the handle's, not the variable's
    assert a.owner == "team-a" and OPEN.owner is None
    assert a.owns("team-a") and not a.owns("KEY_A") and not a.owns("team-b")
    assert not a.owns(None)  # the open gateway's jobs
    assert a.sees_handle("team-a") and not a.sees_handle("team-b")


def test_model_allowed_matches_alias_or_provider_slash_alias() -> None:
    assert model_allowed(("fast",), "fast", CONFIG)
    assert not model_allowed(("fast",), "slow", CONFIG)
    assert model_allowed(("sim/*",), "hang", CONFIG)
    assert not model_allowed(("sim/*",), "gpt-x", CONFIG)
    assert model_allowed(("gpt-*",), "gpt-x", CONFIG)


def test_target_problems_unknown_vs_denied() -> None:
    a = authenticate(KEYS, "secret-a")
    b = authenticate(KEYS, "secret-b")
    assert a is not None and b is not None
    assert target_problems(a, Call(prompt="x", model="fast"), CONFIG) == ([], [])
    assert target_problems(a, Call(prompt="x", model="best"), CONFIG) == ([], [])
    unknown, denied = target_problems(a, Call(prompt="x", model="gpt-x"), CONFIG)
    assert unknown == [] and denied and denied[0][0] == "model"
    unknown, denied = target_problems(b, Call(prompt="x", model="nosuch"), CONFIG)
    assert unknown == [("model", "unknown model or route 'nosuch'")] and denied == []
    call = Call(prompt="x", model="fast", options=Options(fallback=("gpt-x", "nosuch", "auto")))
    unknown, denied = target_problems(a, call, CONFIG)
    assert [f for f, _ in unknown] == ["options.fallback[1]"]
    assert [f for f, _ in denied] == ["options.fallback[0]"]


def test_auto_is_denied_to_a_key_allowed_no_model() -> None:
    keys = (KeySpec(key_env="K", handle="h", secret="s", models=("nothing-*",)),)
    principal = authenticate(keys, "s")
    assert principal is not None
    _, denied = target_problems(principal, Call(prompt="x"), CONFIG)
    assert denied == [("model", "this key may not use any model")]


def test_a_route_granted_by_name_is_callable_alone() -> None:
    # the route "best" is (fast, slow); the key names the route and gpt-x
    keys = (KeySpec(key_env="K", handle="h", secret="s", models=("best", "gpt-x")),)
    key = authenticate(keys, "s")
    assert key is not None
    assert granted_routes(key, CONFIG) == ("best",)
    assert target_problems(key, Call(prompt="x", model="best"), CONFIG) == ([], [])
    for name in ("fast", "slow"):  # its models, not by name
        _, denied = target_problems(key, Call(prompt="x", model=name), CONFIG)
        assert denied == [("model", f"this key may not use model {name!r}")]
        assert not model_allowed(key.models, name, CONFIG)
    via = Call(prompt="x", model="gpt-x", options=Options(fallback=("fast",)))
    assert target_problems(key, via, CONFIG)[1] == [
        ("options.fallback[0]", "this key may not use model 'fast'")
    ]
    # a call to the route may use its chain, as the router is told; its results name them
    assert call_patterns(key, Call(prompt="x", model="best"), CONFIG) == (
        "best",
        "gpt-x",
        "fast",
        "slow",
    )
    assert call_patterns(key, Call(prompt="x", model="gpt-x"), CONFIG) == ("best", "gpt-x")
    assert may_reach(key, "fast", CONFIG) and may_reach(key, "gpt-x", CONFIG)
    assert not may_reach(key, "hang", CONFIG)


def test_auto_for_a_key_given_only_routes_names_what_it_may_call() -> None:
    keys = (KeySpec(key_env="K", handle="h", secret="s", models=("best",)),)
    key = authenticate(keys, "s")
    assert key is not None
    _, denied = target_problems(key, Call(prompt="x", model="auto"), CONFIG)
    assert denied == [("model", "auto: this key may call only the route(s) 'best'")]


def test_bind_principal_sets_handle_key_and_raises_trust() -> None:
    b = authenticate(KEYS, "secret-b")
    assert b is not None
    call = Call(prompt="x", caller=Caller(handle="spoofed", account_id="acct-1"))
    bound = bind_principal(call, b)
    assert bound.caller == Caller(handle="team-b", account_id="acct-1", key_id="KEY_B")
    assert bound.min_trust == "trusted"
    a = authenticate(KEYS, "secret-a")
    assert a is not None
    trusted = Call(prompt="x", min_trust="trusted")
    assert bind_principal(trusted, a).min_trust == "trusted"  # never lowered
    assert bind_principal(call, OPEN) is call
