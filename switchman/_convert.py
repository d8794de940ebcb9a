"""The edge converter: untrusted JSON-like data to ``Call`` and values back to JSON.

Unknown keys, wrong types and out-of-range values all become one
``ValidationError`` naming every bad field by its dotted path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any, Final, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import ForbiddenExtraKeysError, IterableValidationError

from switchman._call import Call, field_name
from switchman._errors import FieldError, ValidationError

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"must be a string; got {_json_type(value)}")
    return value


def _strict_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError(f"must be an integer; got {_json_type(value)}")
    return value


def _strict_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"must be a number; got {_json_type(value)}")
    try:
        return float(value)
    except OverflowError:  # an integer past any float: out of every range, named so
        return math.inf if value > 0 else -math.inf


def _strict_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"must be true or false; got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list() | tuple():
            return "array"
        case dict():
            return "object"
    return type(value).__name__


converter.register_structure_hook(str, _strict_str)
converter.register_structure_hook(int, _strict_int)
converter.register_structure_hook(float, _strict_float)
converter.register_structure_hook(bool, _strict_bool)


def _join(path: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else name


def _flatten(exc: BaseException, path: str) -> list[FieldError]:
    if isinstance(exc, ValidationError):
        return list(exc.prefixed(path).fields) if path else list(exc.fields)
    if isinstance(exc, ForbiddenExtraKeysError):
        return [
            FieldError(_join(path, field_name(k)), "unknown field")
            for k in sorted(exc.extra_fields)
        ]
    if isinstance(exc, IterableValidationError):
        with_notes, others = exc.group_exceptions()
        out = [e for sub, note in with_notes for e in _flatten(sub, _join(path, note.index))]
        return out + [e for sub in others for e in _flatten(sub, path)]
    if isinstance(exc, BaseExceptionGroup):
        return [e for sub in exc.exceptions for e in _flatten(sub, path)]
    return [FieldError(path or "body", str(exc) or type(exc).__name__)]


def _make_attrs_hook(cls: type[Any]) -> Any:
    """A structure hook for one of our frozen classes that reports every bad field.

    Unknown keys, missing required keys and type errors are collected per field;
    the class's own ``_problems`` check then runs on what did structure, so a
    wrong type in one field does not hide an out-of-range value in another.
    """
    attrs.resolve_types(cls)
    fields = attrs.fields(cls)
    names = {f.name for f in fields}
    problems = getattr(cls, "_problems", None)

    def hook(data: Any, _: type) -> Any:
        if not isinstance(data, dict):
            raise TypeError(f"must be an object; got {_json_type(data)}")
        errors = [FieldError(field_name(k), "unknown field") for k in data if k not in names]
        values: dict[str, Any] = {}
        partly: dict[str, Any] = {}  # arrays of which some items structured
        for f in fields:
            if f.name not in data:
                if f.default is attrs.NOTHING:
                    errors.append(FieldError(f.name, "is required"))
                continue
            raw = data[f.name]
            if get_origin(f.type) is Literal:
                if raw not in get_args(f.type):
                    allowed = ", ".join(map(str, get_args(f.type)))
                    errors.append(FieldError(f.name, f"must be one of {allowed}; got {raw!r}"))
                else:
                    values[f.name] = raw
                continue
            try:
                values[f.name] = converter.structure(raw, f.type)
            except Exception as exc:  # every structuring failure is reported, none raised
                errors.extend(_flatten(exc, f.name))
                if isinstance(exc, _ArrayErrors):
                    partly[f.name] = exc.partial
        if errors:
            if problems is not None:
                errors.extend(_beside(errors, problems, fields, {**partly, **values}))
            raise ValidationError(capped(errors, FieldError))
        return cls(**values)

    return hook


class _Invalid:
    """Stands in for a field that did not structure (its error is already reported)."""

    def __repr__(self) -> str:
        return "<invalid>"


_INVALID: Final = _Invalid()


def _beside(
    errors: list[FieldError],
    problems: Any,
    fields: tuple[attrs.Attribute[Any], ...],
    values: dict[str, Any],
) -> list[FieldError]:
    """The class's own problems with what did structure, so a wrong type in one field does
    not hide an out-of-range value in another (nor a bad item of an array its good ones).

    A field that failed is given as an invalid placeholder (not its default, which could
    make a cross-field rule misfire: ``messages`` failing is not ``messages`` absent). A
    problem on a path already reported, or above or below one, is the same mistake seen
    again and is left out.
    """
    failed = {e.field.split(".")[0].split("[")[0] for e in errors}
    partial = SimpleNamespace(
        **{
            f.name: values[f.name]
            if f.name in values
            else (_INVALID if f.name in failed else _default(f))
            for f in fields
        }
    )
    # (a set of the paths reported and every path above them: each problem is looked up
    # once, not against every error, which took seconds for arrays of thousands)
    above = {p for e in errors for p in _ancestors(e.field)}
    # ... and the items past those told one by one (``[16]: is wrong too, and N more``),
    # which the class would see as placeholders ("got _Invalid")
    reported = {e.field for e in errors} | {
        f"{name}[{i}]"
        for name, value in values.items()
        if isinstance(value, tuple)
        for i, item in enumerate(value)
        if item is _INVALID
    }
    return [
        e
        for e in problems(partial)
        if not (
            e.field in reported
            or e.field in above
            or any(p in reported for p in _ancestors(e.field))
        )
    ]


def _ancestors(path: str) -> list[str]:
    """The paths above ``path``: ``messages[0].role`` -> ``messages``, ``messages[0]``."""
    return [path[:i] for i, c in enumerate(path) if c in ".[" and i > 0]


def _default(f: attrs.Attribute[Any]) -> Any:
    default: Any = f.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return default.factory()
    return None if f.default is attrs.NOTHING else f.default


#: the most items an array of a request may hold (a conversation of 10,000 messages is
#: longer than any model's context; checking 2 million numbers held the loop for seconds)
MAX_ARRAY: Final = 10_000
#: the problems one request is told of; past them, one says how many more there were
MAX_ERRORS: Final = 64


def capped(errors: list[T], item: Callable[[str, str], T]) -> list[T]:
    """``errors``, at most ``MAX_ERRORS`` of them and then one (``item(field, message)``)
    saying how many more there were: a request of thousands of mistakes, a short answer."""
    if len(errors) <= MAX_ERRORS:
        return errors
    return [
        *errors[:MAX_ERRORS],
        item("body", f"{len(errors) - MAX_ERRORS} more problems not listed"),
    ]


#: the items of one array whose errors are told one by one; past them, one error says how
#: many more failed
MAX_ITEM_ERRORS: Final = 16


def _structure_array(value: Any, cls: Any) -> Any:
    if not isinstance(value, list | tuple):
        raise TypeError(f"must be an array; got {_json_type(value)}")
    if len(value) > MAX_ARRAY:  # (each item is checked on the gateway's loop)
        raise TypeError(f"must have at most {MAX_ARRAY:,} items; got {len(value):,}")
    (item,) = {a for a in get_args(cls) if a is not Ellipsis}
    out: list[Any] = []
    errors: list[FieldError] = []
    bad: list[int] = []  # the items that failed
    for i, x in enumerate(value):
        try:
            out.append(converter.structure(x, item))
        except Exception as exc:  # collected per index
            bad.append(i)
            if len(bad) <= MAX_ITEM_ERRORS:
                errors.extend(_flatten(exc, f"[{i}]"))
            out.append(_INVALID)
    if len(bad) > MAX_ITEM_ERRORS:  # (not one error per item of an array of thousands)
        more = len(bad) - MAX_ITEM_ERRORS
        errors.append(
            FieldError(
                f"[{bad[MAX_ITEM_ERRORS]}]", f"is wrong too, and {more - 1} more items after it"
            )
            if more > 1
            else FieldError(f"[{bad[MAX_ITEM_ERRORS]}]", "is wrong too")
        )
    if errors:
        raise _ArrayErrors(errors, tuple(out))
    return tuple(out)


class _ArrayErrors(ValidationError):
    """The errors of an array's items, with the items that did structure (``partial``, the
    others invalid placeholders) so the owning class still checks those."""

    def __init__(self, fields: list[FieldError], partial: tuple[Any, ...]) -> None:
        super().__init__(fields)
        self.partial = partial


def _structure_object(value: Any, _: Any) -> Any:
    if not isinstance(value, dict):
        raise TypeError(f"must be an object; got {_json_type(value)}")
    return value


def _is_schema_class(cls: Any) -> bool:
    return attrs.has(cls) and getattr(cls, "__module__", "").startswith("switchman.")


converter.register_structure_hook_factory(_is_schema_class, _make_attrs_hook)


def _is_array(t: Any) -> bool:
    args = get_args(t)
    return get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis


def _is_object(t: Any) -> bool:
    return get_origin(t) in (Mapping, dict) or t is Mapping


converter.register_structure_hook_func(_is_array, _structure_array)
converter.register_structure_hook_func(_is_object, _structure_object)


def structure(data: Any, cls: type[T]) -> T:
    """Build ``cls`` from untrusted data or raise ``ValidationError`` naming every bad field."""
    if not isinstance(data, dict):
        raise ValidationError([FieldError("body", "must be a JSON object")])
    try:
        return converter.structure(data, cls)
    except ValidationError:
        raise
    except (TypeError, ValueError) as exc:
        raise ValidationError([FieldError("body", str(exc))]) from None


def call_from_dict(data: Any) -> Call:
    """A ``Call`` from a JSON object, as the gateway receives it."""
    return structure(data, Call)


def to_jsonable(value: Any) -> Any:
    """Any of switchman's frozen values as plain JSON-ready data."""
    return converter.unstructure(value)
