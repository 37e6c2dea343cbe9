"""How options are declared and read: a dataclass field carrying its one-line doc (:func:`doc`),
the one coercer of config values (:func:`coerce_value`), and the reading of a task's options
(:func:`parse_options`). The run config (:mod:`pbtnas.config`) and every task
(:mod:`pbtnas.tasks.base`) use it, so it is a leaf module: it imports nothing from pbtnas but
:mod:`pbtnas.errors`."""

from __future__ import annotations

import dataclasses
from typing import Any

from pbtnas.errors import ConfigError


def did_you_mean(unknown: list[str], known) -> str:
    """``" (did you mean 'population'?)"`` for misspelt keys that are close to a known one."""
    import difflib

    guesses = [match[0] for key in unknown if (match := difflib.get_close_matches(key, list(known), n=1, cutoff=0.75))]
    return f" (did you mean {', '.join(repr(g) for g in guesses)}?)" if guesses else ""


def doc(text: str, default: Any = dataclasses.MISSING, **kwargs):
    """A dataclass field carrying a one-line doc string (shown by ``pbtnas space`` and docs)."""
    if default is dataclasses.MISSING and "default_factory" not in kwargs:
        return dataclasses.field(metadata={"doc": text}, **kwargs)
    if "default_factory" in kwargs:
        return dataclasses.field(metadata={"doc": text}, **kwargs)
    return dataclasses.field(default=default, metadata={"doc": text}, **kwargs)


#: how a config value's expected type is named in an error
_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list", tuple: "a list"}


def parse_options(options_cls: type, values: dict | None, where: str = "task") -> Any:
    """Build an options dataclass from a dict, naming any unknown key or bad value."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {where} option(s) {unknown}{did_you_mean(unknown, fields)}; known: {sorted(fields)}")
    coerced = {}
    for name, value in values.items():
        coerced[name] = coerce_value(value, fields[name], where)
    try:
        return options_cls(**coerced)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad {where} options: {exc}") from exc


def coerce_value(value: Any, field: dataclasses.Field, where: str) -> Any:
    """A config value as the type of ``field``'s default (``"true"`` -> True, ``"3"`` -> 3, a
    comma list -> list), or one :class:`ConfigError` naming ``where.field``. The one coercer of
    the run config and of every task's options."""
    if field.default is not dataclasses.MISSING:
        default = field.default
    elif field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    else:
        default = None
    if default is None or value is None:
        return value
    kind = type(default)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if isinstance(value, (int, float)) and value in (0, 1):
                return bool(value)
            raise ValueError(value)
        if kind in (int, float, str):
            if kind is int and isinstance(value, str) and any(c in value for c in ".eE"):
                value = float(value)  # "1e6" (YAML reads it as a string) is a whole number
            if kind is int and isinstance(value, float) and value != int(value):
                raise ValueError(value)
            if kind in (int, float) and isinstance(value, bool):
                raise ValueError(value)
            if kind is str and isinstance(value, (bool, list, tuple, dict, set)):
                raise ValueError(value)  # a name or path: a number or a date may stand for one, true or a list may not
            return kind(value)
        if kind in (tuple, list):
            if isinstance(value, str):
                return kind(v.strip() for v in value.split(",") if v.strip())
            if isinstance(value, (list, tuple)):
                return kind(value)
            raise ValueError(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite integer (.inf, 1e400)
        what = f"config key {field.name!r}" if where == "config" else f"{where}.{field.name}"
        raise ConfigError(f"{what} must be {_KIND_NAMES.get(kind, 'a ' + kind.__name__)}, got {value!r}") from None
    return value


def options_doc(options_cls: type) -> list[dict]:
    """Rows ``name, default, doc`` for an options dataclass."""
    rows = []
    for f in dataclasses.fields(options_cls):
        default = (
            f.default if f.default is not dataclasses.MISSING else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        )
        rows.append({"name": f.name, "default": default, "doc": f.metadata.get("doc", "")})
    return rows
