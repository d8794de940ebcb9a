"""The paths of a configuration's mistakes: a part's own under the part's path, and
``[[models]]`` entries' as the file writes them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import attrs

from switchman._errors import FieldError
from switchman.catalog._spec import ModelSpec

#: a model's fields, which end the paths of its mistakes
_FIELDS: Final = frozenset(a.name for a in attrs.fields(ModelSpec))


def as_written(error: FieldError, entries: Any) -> FieldError:
    """``error`` by the file's own path: a ``[[models]]`` entry's (of ``entries``, the
    file's array) by its place in the array (``models[2].input_per_mtok``), where
    validate_config's rules name the alias (``models.m1.input_per_mtok``). An alias may
    hold dots: the longest whose rest of the path is a model's field wins; a repeated
    alias, its first entry's (the one kept)."""
    if not error.field.startswith("models.") or not isinstance(entries, list):
        return error
    places: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if isinstance(entry, dict) and isinstance(alias := entry.get("alias"), str):
            places.setdefault(alias, i)
    named = error.field.removeprefix("models.")
    for alias in sorted(places, key=len, reverse=True):
        rest = named.removeprefix(alias)
        if rest != named and rest.startswith(".") and _field(rest[1:]) in _FIELDS:
            return FieldError(f"models[{places[alias]}]{rest}", error.message)
    if named in places:
        return FieldError(f"models[{places[named]}]", error.message)
    return error


def _field(path: str) -> str:
    """The field a path within a model starts with (``capabilities[0]``: capabilities)."""
    return path.split(".")[0].split("[")[0]


def _join(path: str, name: str | int) -> str:
    return f"{path}[{name}]" if isinstance(name, int) else f"{path}.{name}"


def _under(path: str, errors: Sequence[FieldError]) -> list[FieldError]:
    return [FieldError(_join(path, e.field) if e.field else path, e.message) for e in errors]


def _one(errors: list[FieldError], path: str, value: object, cls: type[Any]) -> bool:
    """``value`` is a ``cls`` with no problems of its own (noted under ``path`` if not)."""
    if not isinstance(value, cls):
        errors.append(FieldError(path, f"must be a {cls.__name__}; got {type(value).__name__}"))
        return False
    found = _under(path, cls._problems(value))
    errors.extend(found)
    return not found
