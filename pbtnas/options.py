"""How options are declared and read: the run config (:mod:`pbtnas.config`) and every task's
options (:mod:`pbtnas.tasks.base`) are dataclasses whose fields say what they allow, and one
mechanism (pydantic) reads them.

A field is declared with :func:`doc`: its one-line doc, its default, and optionally its range
(``ge``, ``gt``, ``le``, ``lt``: a number with a bound must also be finite) and its ``choices``.
A field's type annotation may carry pydantic or annotated-types metadata too
(``Annotated[int, Field(ge=1)]``). :func:`parse_options` reads a mapping from YAML or
``--set`` into the dataclass (``"8"`` -> 8, ``"1e6"`` -> 1000000, ``"a,b"`` -> ``["a", "b"]``;
a boolean is not a number, nor a number a boolean), naming the first bad key in one
:class:`ConfigError` line (``population: must be at least 4 (got 2)``); :func:`options_doc`
lists the same declarations for ``pbtnas space`` and ``pbtnas inspect``.

A leaf module: it imports nothing from pbtnas but :mod:`pbtnas.errors`."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import types
import typing
from collections.abc import Collection, Mapping
from typing import Annotated, Any

import annotated_types as at

from pbtnas.errors import ConfigError

if typing.TYPE_CHECKING:
    import pydantic

#: how a value's expected kind is named in an error
_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list", tuple: "a list", dict: "a mapping"}
_BOUNDS = (at.Ge, at.Gt, at.Le, at.Lt)


def did_you_mean(unknown: list[str], known) -> str:
    """``" (did you mean 'population'?)"`` for misspelt keys that are close to a known one."""
    import difflib

    guesses = [match[0] for key in unknown if (match := difflib.get_close_matches(key, list(known), n=1, cutoff=0.75))]
    return f" (did you mean {', '.join(repr(g) for g in guesses)}?)" if guesses else ""


def doc(text: str, default: Any = dataclasses.MISSING, *, ge=None, gt=None, le=None, lt=None, choices=None, **kwargs):
    """A dataclass field carrying a one-line doc string (shown by ``pbtnas space`` and docs) and
    what it allows: bounds (``ge``/``gt``/``le``/``lt``; a number with a bound must be finite)
    and ``choices`` (an iterable of the allowed values; a mapping, such as a registry, is kept
    as it is and read when a value is checked, so that a name registered later is allowed).
    Other keywords go to :func:`dataclasses.field` (``default_factory``)."""
    bounds = tuple(kind(value) for kind, value in zip(_BOUNDS, (ge, gt, le, lt)) if value is not None)
    metadata: dict[str, Any] = {"doc": text, "bounds": bounds}
    if choices is not None:
        metadata["choices"] = choices if isinstance(choices, Mapping) else tuple(choices)
    if default is not dataclasses.MISSING:
        kwargs["default"] = default
    return dataclasses.field(metadata=metadata, **kwargs)


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """What one option allows, as its declaration says: read by the validation, the error
    messages and the listings alike."""

    name: str
    #: the value's kind (int, float, bool, str, list, ...) or None for anything
    kind: type | None
    default: Any
    doc: str
    bounds: tuple = ()
    #: the allowed values: a tuple, or a live mapping whose keys are (a registry)
    choices: Collection | None = None

    def allowed(self) -> str:
        """What the option allows in words (``"at least 4"``, ``"a number in [0, 1)"``), or ''."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        low = next((b for b in self.bounds if isinstance(b, (at.Ge, at.Gt))), None)
        high = next((b for b in self.bounds if isinstance(b, (at.Le, at.Lt))), None)
        lo = _number(getattr(low, "ge", getattr(low, "gt", None)))
        hi = _number(getattr(high, "le", getattr(high, "lt", None)))
        if low is not None and high is not None:
            left, right = "[" if isinstance(low, at.Ge) else "(", "]" if isinstance(high, at.Le) else ")"
            if self.kind is int and left == "[" and right == "]":
                return f"between {lo} and {hi}"
            return f"{'an integer' if self.kind is int else 'a number'} in {left}{lo}, {hi}{right}"
        if self.kind is int:
            if low is not None:
                return f"at least {lo}" if isinstance(low, at.Ge) else f"greater than {lo}"
            if high is not None:
                return f"at most {hi}" if isinstance(high, at.Le) else f"less than {hi}"
            return ""
        if low is not None:
            return f"a finite number {'>=' if isinstance(low, at.Ge) else '>'} {lo}"
        if high is not None:
            return f"a finite number {'<=' if isinstance(high, at.Le) else '<'} {hi}"
        return ""


def _number(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _plain(hint) -> tuple[Any, tuple]:
    """``Annotated[T | None, m1, m2]`` -> ``(T, (m1, m2))``: the type under its metadata, and
    that metadata."""
    extra: tuple = ()
    if typing.get_origin(hint) is Annotated:
        hint, *rest = typing.get_args(hint)
        extra = tuple(rest)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint = args[0]
    return hint, extra


def _kind_of(hint, default) -> type | None:
    base = typing.get_origin(hint) or hint
    if isinstance(base, type):
        return base
    if hint is Any and default is not None:
        return type(default)
    return None


def _bounds_in(metadata: tuple) -> tuple:
    """The bounds among a field annotation's metadata (``Field(ge=1)``, ``annotated_types.Ge(1)``)."""
    found: list = []
    for item in metadata:
        items = item.metadata if isinstance(getattr(item, "metadata", None), list) else [item]  # pydantic's Field(...)
        found += [b for b in items if isinstance(b, _BOUNDS)]
        if isinstance(item, at.Interval):
            found += [b for b in item if isinstance(b, _BOUNDS)]
    return tuple(found)


def _prepare(kind: type | None, value: Any) -> Any:
    """What YAML and ``--set`` give, made ready for pydantic's own coercion: pydantic takes
    ``True`` for 1 and 1 for ``True``, which a config must not; YAML reads ``1e6`` as a string,
    a date as a date; a comma list from the command line is a list."""
    if value is None or kind is None:
        return value
    if kind in (int, float) and isinstance(value, bool):
        raise ValueError(f"must be {_KIND_NAMES[kind]}")
    if kind is bool and isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError("must be true or false")
    if kind is int and isinstance(value, str) and any(c in value for c in ".eE"):
        try:
            return float(value)  # "1e6" is a whole number; "1.5" is then refused as one
        except ValueError:
            return value
    if kind is str:
        if isinstance(value, bool):
            raise ValueError("must be a string")  # a name or path: a number or a date may stand for one, true may not
        if isinstance(value, (datetime.date, datetime.time)):
            return str(value)
    if kind in (list, tuple, set) and isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


@functools.cache
def _declared(options_cls: type) -> dict[str, tuple[OptionSpec, Any, tuple]]:
    """Every option of a dataclass as an :class:`OptionSpec`, with the type pydantic checks it
    as and the annotation's own metadata (read once per class)."""
    try:
        hints = typing.get_type_hints(options_cls, include_extras=True)
    except Exception:  # an annotation naming what only type checkers import: go by the defaults
        hints = {}
    declared = {}
    for f in dataclasses.fields(options_cls):
        default = _default(f)
        hint, extra = _plain(hints.get(f.name, Any))
        if hint is Any and default is not None:
            hint = type(default)
        bounds = tuple(f.metadata.get("bounds", ())) + _bounds_in(extra)
        spec = OptionSpec(f.name, _kind_of(hint, default), default, f.metadata.get("doc", ""), bounds, f.metadata.get("choices"))
        declared[f.name] = (spec, hint, extra)
    return declared


@functools.cache
def _model(options_cls: type) -> type[pydantic.BaseModel]:
    """The pydantic model that checks a mapping of ``options_cls``'s options (built once per
    class, and only when options are read: listing them needs no pydantic)."""
    import pydantic

    fields: dict[str, Any] = {}
    for name, (spec, hint, extra) in _declared(options_cls).items():
        rules: list = [pydantic.BeforeValidator(functools.partial(_prepare, spec.kind)), *extra]
        target = hint
        if spec.choices is not None:  # checked when read: a registry may grow after the model is built
            rules.append(pydantic.AfterValidator(functools.partial(_one_of, spec)))
        rules += [b for b in spec.bounds if b not in _bounds_in(extra)]
        if spec.bounds and spec.kind is float:
            rules.append(pydantic.AllowInfNan(False))
        fields[name] = (Annotated[(target, *rules)], None)
    config = pydantic.ConfigDict(arbitrary_types_allowed=True, coerce_numbers_to_str=True)
    return pydantic.create_model(f"{options_cls.__name__}Check", __config__=config, **fields)


def _one_of(spec: OptionSpec, value: Any) -> Any:
    if value not in spec.choices:  # type: ignore[operator]
        raise ValueError(f"must be {spec.allowed()}")
    return value


def option_specs(options_cls: type) -> dict[str, OptionSpec]:
    """What each option of ``options_cls`` allows, by name (for listings and the CLI's flags)."""
    return {name: spec for name, (spec, _, _) in _declared(options_cls).items()}


def _key(name: str, where: str) -> str:
    return name if where == "config" else f"{where}.{name}"


def _one_line(error: Any, specs: dict[str, OptionSpec], where: str) -> str:
    """A pydantic error as the one line a user reads: the key as written, what it allows, what
    was given."""
    name, *inner = error["loc"]
    spec = specs[str(name)]
    key = _key(str(name), where) + "".join(f"[{i}]" for i in inner)
    kind = error["type"]
    if kind == "value_error":
        text = str(error["ctx"]["error"])
    elif spec.choices is not None:
        text = f"must be {spec.allowed()}"
    elif spec.kind is int and kind in ("finite_number", "int_from_float", "int_parsing", "int_type"):
        text = "must be an integer"
    elif spec.bounds and kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"):
        text = f"must be {spec.allowed()}"
    elif not inner and spec.kind in _KIND_NAMES:
        text = f"must be {_KIND_NAMES[spec.kind]}"
    else:
        text = error["msg"][:1].lower() + error["msg"][1:]
    guess = did_you_mean([error["input"]], spec.choices) if spec.choices is not None and not inner and isinstance(error["input"], str) else ""
    return f"{key}: {text} (got {error['input']!r}){guess}"


def check_values(options_cls: type, values: dict, where: str = "task") -> dict:
    """``values`` (option name -> value, names known) as the options' declarations make them, or
    one :class:`ConfigError` naming the first bad one (as ``where.name``; a run config's keys as
    themselves, ``where="config"``)."""
    import pydantic

    try:
        checked = _model(options_cls).model_validate(values)
    except pydantic.ValidationError as exc:
        specs = option_specs(options_cls)
        raise ConfigError(_one_line(exc.errors()[0], specs, where)) from None
    return {name: getattr(checked, name) for name in values}


def coerce_value(options_cls: type, name: str, value: Any, where: str = "config") -> Any:
    """One option's value as its declaration makes it (``"8"`` -> 8), or one ConfigError."""
    return check_values(options_cls, {name: value}, where)[name]


def parse_options(options_cls: type, values: dict | None, where: str = "task") -> Any:
    """Build an options dataclass from a mapping, naming any unknown key (with a guess at the one
    meant) or bad value in one :class:`ConfigError`. ``where`` is ``"task"`` for a task's options
    and ``"config"`` for the run config."""
    values = dict(values or {})
    fields = {f.name for f in dataclasses.fields(options_cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        noun, known = ("key(s)", "known keys") if where == "config" else ("option(s)", "known")
        raise ConfigError(f"unknown {where} {noun} {unknown}{did_you_mean(unknown, fields)}; {known}: {sorted(fields)}")
    checked = check_values(options_cls, values, where)
    try:
        return options_cls(**checked)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad {where} options: {exc}") from None


def check_options(options: Any, where: str = "task") -> None:
    """Refuse options built in Python rather than read by :func:`parse_options` (``GanOptions(lr=0)``)
    when a value other than its default breaks its declaration. Options that are not a dataclass
    are the task's own affair."""
    if not dataclasses.is_dataclass(options) or isinstance(options, type):
        return
    changed = {}
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        try:
            same = bool(value == _default(f))
        except Exception:  # an array compares element-wise: not a default
            same = False
        if not same:
            changed[f.name] = value
    check_values(type(options), changed, where)


def options_doc(options_cls: type) -> list[dict]:
    """Rows ``name, default, doc, allowed`` for an options dataclass."""
    return [{"name": s.name, "default": s.default, "doc": s.doc, "allowed": s.allowed()} for s in option_specs(options_cls).values()]
