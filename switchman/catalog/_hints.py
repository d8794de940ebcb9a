"""What a mistaken name was likely meant to be: ``server.prot: unknown field (did you
mean 'port'?)``.

Pure and quick; nothing to cancel.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Sequence
from typing import Any, Final, Union, get_args, get_origin

import attrs

from switchman._errors import FieldError

UNKNOWN_FIELD: Final = "unknown field"


def did_you_mean(name: object, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` naming the option closest to ``name`` (difflib's measure,
    at 0.6 or more), or ``""`` when none is close enough (or ``name`` is no string)."""
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, sorted(set(options)), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_field(path: str, name: object, allowed: Iterable[str]) -> FieldError:
    """The error for ``name``, a key not among ``allowed``, at ``path``, with the allowed
    key closest to it when one is close."""
    return FieldError(path, UNKNOWN_FIELD + did_you_mean(name, allowed))


def hinted(
    errors: Sequence[FieldError],
    prefix: str,
    cls: type[Any],
    *,
    unsaid: frozenset[str] = frozenset(),
) -> list[FieldError]:
    """``errors`` (of a table under ``prefix`` structured as the attrs class ``cls``, as
    the edge converter names them) with each bare "unknown field" given the closest
    field of the class it is in (a nested class's: ``router.weights.costs``), of those
    a file may say (not ``unsaid``)."""
    return [_hint(e, prefix, cls, unsaid) if e.message == UNKNOWN_FIELD else e for e in errors]


def _hint(error: FieldError, prefix: str, cls: type[Any], unsaid: frozenset[str]) -> FieldError:
    if not error.field.startswith(f"{prefix}."):
        return error
    *inner, name = re.sub(r"\[\d+\]", "", error.field[len(prefix) + 1 :]).split(".")
    owner: type[Any] | None = cls
    for part in inner:
        owner = _attrs_class(owner, part)
    if owner is None:
        return error
    return unknown_field(error.field, name, attrs.fields_dict(owner).keys() - unsaid)


def _attrs_class(cls: type[Any] | None, name: str) -> type[Any] | None:
    """The attrs class field ``name`` of ``cls`` holds (``SimProfile | None``: SimProfile),
    or None."""
    if cls is None or not attrs.has(cls):
        return None
    attrs.resolve_types(cls)
    field = attrs.fields_dict(cls).get(name)
    kind = field.type if field is not None else None
    options = get_args(kind) if get_origin(kind) in (Union, types.UnionType) else (kind,)
    return next((k for k in options if isinstance(k, type) and attrs.has(k)), None)
