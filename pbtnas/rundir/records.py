"""What a run directory holds, as types: every journal event, the manifest and the best record.

The journal (``journal.jsonl``) is one JSON object per line: ``{"event": NAME, "time": T,
...fields}``. Each event NAME has one frozen dataclass here (see :data:`EVENTS`), and both sides go
through it: :meth:`RunStore.append <pbtnas.rundir.store.RunStore.append>` builds the record with
:func:`build_record` (strict: an unknown or missing field, or a value of the wrong kind, raises
:class:`JournalSchemaError`, a bug in the writing code), and readers get records from
:func:`record_from_json` (lenient: a field an older run directory lacks reads as its default,
usually None; a field a newer pbtnas added is kept in ``extra``; an event name this version does
not know becomes an :class:`UnknownEvent`). ``docs/journal.md`` describes every event.

Field kinds (the same rules for events, the manifest and the best record):

* a plain field (``step: int``) is always written; on reading, a missing one takes the field's
  default, or None when it has none;
* an :func:`optional` field is written only when it is not None (a mode or a case that lacks it
  simply leaves it out, as the journal always did).

JSON keys that are Python keywords (``lambda``, ``from``) are fields named with a trailing
underscore (``lambda_``, ``from_``); the JSON key is unchanged.
"""

from __future__ import annotations

import difflib
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Union

from pbtnas.search.final_selection import Contender

if TYPE_CHECKING:
    from typing import Self

__all__ = [
    "EVENTS",
    "BestRecord",
    "CheckpointEntry",
    "Codec",
    "Entry",
    "JournalSchemaError",
    "Manifest",
    "MemberEntry",
    "Record",
    "Summary",
    "TrialEntry",
    "Typed",
    "UnknownEvent",
    "build_record",
    "fitness_of",
    "journal_problem",
    "optional",
    "record_from_json",
]


class JournalSchemaError(TypeError):
    """A record was written with a field its type does not declare, without one it requires, or
    with a value of the wrong kind: a bug in the code that writes it (add the field to
    ``pbtnas/rundir/records.py`` and ``docs/journal.md`` when it is new)."""


def optional(default: Any = None) -> Any:
    """A field that may be left out: written only when it is not None."""
    return field(default=default, metadata={"optional": True})


# -- the shared machinery -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    attr: str
    key: str  # the JSON key
    hint: Any
    optional: bool
    default: Any  # used when reading a record that lacks the field


class Codec:
    """What every record type can do: be read from and written to a JSON object. The dataclass
    roots below hold its two fields; a record type derives from one of them, :class:`Typed`
    (frozen: journal events, the best record, the summary) or :class:`Entry` (changed in place
    while the run goes on: a manifest's members and trials).

    ``extra`` holds the keys of a JSON object this version does not declare (written by a newer
    pbtnas); they are written back unchanged, after the declared ones. ``absent`` names the plain
    fields the object lacked (an older pbtnas): they read as defaults but are not written back,
    so a record read from an old line writes that line again, nothing invented."""

    KEYS: ClassVar[dict[str, str]] = {}  # attribute -> JSON key, where the key is a Python keyword
    SKIP: ClassVar[tuple[str, ...]] = ("extra", "absent")
    OWN_KEYS: ClassVar[tuple[str, ...]] = ()  # JSON keys of the record itself, not fields (event, time)

    extra: dict
    absent: frozenset

    @classmethod
    def specs(cls) -> tuple[_Spec, ...]:
        return _specs(cls)

    @classmethod
    def attrs(cls, data: Mapping) -> dict:
        """``data`` (fields by JSON key, e.g. an operator's record) by attribute name, to pass to
        the constructor: ``ChildCreated(..., **ChildCreated.attrs(record.to_dict()))``."""
        names = {key: attr for attr, key in cls.KEYS.items()}
        return {names.get(k, k): v for k, v in data.items()}

    def checked(self, where: str = "") -> Self:
        """This record read back strictly from what it writes: one :class:`JournalSchemaError`
        when a value is of the wrong kind (a writer bug mypy cannot see, e.g. a value typed Any)."""
        return type(self).from_dict(self.to_dict(), strict=True, where=where or type(self).__name__)

    @classmethod
    def from_dict(cls, data: Mapping, strict: bool = False, where: str = "") -> Self:
        """Read a JSON object. ``strict`` (what writing uses): unknown keys, missing plain fields
        and values of the wrong kind raise :class:`JournalSchemaError`; otherwise missing fields
        take their defaults and unknown keys are kept in ``extra``."""
        where = where or cls.__name__
        if not isinstance(data, Mapping):
            raise JournalSchemaError(f"{where}: expected a JSON object, got {type(data).__name__}")
        specs = cls.specs()
        # a record's own keys (a journal line's event and time) are read, never written as fields
        known = {s.key for s in specs} | (set() if strict else set(cls.OWN_KEYS))
        unknown = [k for k in data if k not in known]
        if strict and unknown:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(str(k), [s.key for s in specs], n=1)
                hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise JournalSchemaError(
                f"{where} has no field {', '.join(hints)}; its fields: {', '.join(s.key for s in specs)} (pbtnas/rundir/records.py)"
            )
        values: dict[str, Any] = {}
        absent = []
        for spec in specs:
            if spec.key in data:
                value = data[spec.key]
                if strict:
                    _check(value, spec.hint, f"{where} field {spec.key!r}")
                values[spec.attr] = _convert_in(value, spec.hint, strict, f"{where} field {spec.key!r}")
            elif strict and not spec.optional:
                raise JournalSchemaError(f"{where} lacks its field {spec.key!r} (pbtnas/rundir/records.py)")
            else:
                values[spec.attr] = spec.default() if callable(spec.default) else spec.default
                if not spec.optional:
                    absent.append(spec.key)
        values.update(extra={k: data[k] for k in unknown}, absent=frozenset(absent), **cls._fixed(data))
        return cls(**values)

    @classmethod
    def _fixed(cls, data: Mapping) -> dict:
        return {}

    def to_dict(self) -> dict:
        """The JSON object: declared fields in order (optional ones only when set), then ``extra``."""
        out: dict[str, Any] = {}
        for spec in self.specs():
            value = getattr(self, spec.attr)
            if (spec.optional and value is None) or spec.key in self.absent:
                continue
            out[spec.key] = _convert_out(value)
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def has(self, key: str) -> bool:
        """Whether the JSON object held ``key`` (a declared field it did not lack, or an extra)."""
        if key in self.extra:
            return True
        return any(spec.key == key and key not in self.absent and not (spec.optional and getattr(self, spec.attr) is None) for spec in self.specs())

    def get(self, key: str, default: Any = None) -> Any:
        """The value of a JSON key (declared or extra), for code that reads by key."""
        for spec in self.specs():
            if spec.key == key:
                value = getattr(self, spec.attr)
                return default if value is None else value
        return self.extra.get(key, default)


@dataclass(frozen=True, kw_only=True)
class Typed(Codec):
    """Root of the frozen record types (journal events, the best record, the summary)."""

    extra: dict = field(default_factory=dict, compare=False, repr=False)
    absent: frozenset = field(default=frozenset(), compare=False, repr=False)


@dataclass(kw_only=True)
class Entry(Codec):
    """Root of the record types the run changes in place (a manifest's members and trials)."""

    extra: dict = field(default_factory=dict, compare=False, repr=False)
    absent: frozenset = field(default=frozenset(), compare=False, repr=False)


_SPECS: dict[type, tuple[_Spec, ...]] = {}


def _specs(cls: Any) -> tuple[_Spec, ...]:
    if cls in _SPECS:
        return _SPECS[cls]
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        if f.name in cls.SKIP or not f.init:
            continue
        if f.default is not MISSING:
            default: Any = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory
        else:
            default = None
        out.append(_Spec(f.name, cls.KEYS.get(f.name, f.name), hints[f.name], bool(f.metadata.get("optional")), default))
    _SPECS[cls] = tuple(out)
    return _SPECS[cls]


def _parts(hint: Any) -> tuple[Any, tuple]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return Union, typing.get_args(hint)
    return origin, typing.get_args(hint)


def _check(value: Any, hint: Any, where: str) -> None:
    if not _fits(value, hint):
        raise JournalSchemaError(f"{where} is {type(value).__name__} {_short(value)}, expected {_name(hint)} (pbtnas/rundir/records.py)")


def _fits(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    origin, args = _parts(hint)
    if origin is Union:
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if isinstance(hint, type) and (issubclass(hint, Codec) or is_dataclass(hint)):
        return isinstance(value, (hint, Mapping))
    if hint is bool:
        return isinstance(value, bool) or type(value).__name__ == "bool_"
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is dict or origin is dict:
        if not isinstance(value, Mapping):
            return False
        return not args or all(_fits(v, args[1]) for v in value.values())
    if hint is list or origin is list:
        if not isinstance(value, (list, tuple)):
            return False
        return not args or all(_fits(v, args[0]) for v in value)
    raise TypeError(f"records.py: no check for type {hint!r}")  # a field declared with a type this module does not handle


def _convert_in(value: Any, hint: Any, strict: bool, where: str) -> Any:
    """Nested record types (the manifest's members, best and checkpoints) become records."""
    origin, args = _parts(hint)
    if origin is Union:
        typed = [a for a in args if isinstance(a, type) and issubclass(a, Codec)] or [a for a in args if typing.get_origin(a) in (list, dict)]
        return _convert_in(value, typed[0], strict, where) if typed and value is not None else value
    if isinstance(hint, type) and issubclass(hint, Codec):
        return value if isinstance(value, hint) or not isinstance(value, Mapping) else hint.from_dict(value, strict, where)
    if isinstance(hint, type) and is_dataclass(hint):  # a plain dataclass of a lower floor (Contender)
        return value if isinstance(value, hint) or not isinstance(value, Mapping) else _plain(hint, value, strict, where)
    if origin is list and args and isinstance(args[0], type) and _nested(args[0]) and isinstance(value, (list, tuple)):
        return [_convert_in(v, args[0], strict, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict and args and isinstance(args[1], type) and _nested(args[1]) and isinstance(value, Mapping):
        return {k: _convert_in(v, args[1], strict, f"{where}[{k!r}]") for k, v in value.items()}
    return value


def _nested(kind: type) -> bool:
    return issubclass(kind, Codec) or is_dataclass(kind)


def _plain(kind: type, value: Mapping, strict: bool, where: str) -> Any:
    try:
        return kind(**value)
    except TypeError as exc:
        if strict:
            raise JournalSchemaError(f"{where}: {exc} (pbtnas/rundir/records.py)") from None
        return value  # lenient: left as read, for the shape checks (rundir/checks.py) to name


def _convert_out(value: Any) -> Any:
    if isinstance(value, Codec):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, list) and value and _nested(type(value[0])):
        return [_convert_out(v) for v in value]
    if isinstance(value, dict) and value and _nested(type(next(iter(value.values())))):
        return {k: _convert_out(v) for k, v in value.items()}
    return value


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- journal events -------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Record(Typed):
    """One journal event. ``EVENT`` is its name; ``time`` the Unix time it was written."""

    EVENT: ClassVar[str] = ""
    SKIP: ClassVar[tuple[str, ...]] = ("extra", "absent", "time")
    OWN_KEYS: ClassVar[tuple[str, ...]] = ("event", "time")

    time: float | None = None

    @property
    def event(self) -> str:
        return self.EVENT

    @classmethod
    def _fixed(cls, data: Mapping) -> dict:
        when = data.get("time")
        return {"time": when if isinstance(when, (int, float)) and not isinstance(when, bool) else None}

    def to_json(self) -> dict:
        """The journal line's object: ``event``, ``time``, then the fields."""
        return {"event": self.event, "time": self.time, **self.to_dict()}

    @classmethod
    def from_json(cls, data: Mapping) -> "Record":
        """Read one journal object (leniently) as the record class its ``event`` names."""
        return record_from_json(data)


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Record):
    """An event this version does not know (a newer pbtnas wrote it): its fields are in ``extra``."""

    SKIP: ClassVar[tuple[str, ...]] = ("extra", "absent", "time", "name")

    name: str = ""

    @property
    def event(self) -> str:
        return self.name

    def to_json(self) -> dict:
        return {"event": self.name, "time": self.time, **self.extra}


R = typing.TypeVar("R", bound="Record")

#: event name -> record class
EVENTS: dict[str, type[Record]] = {}


def _event(name: str) -> Callable[[type[R]], type[R]]:
    """Register a record class (a frozen, keyword-only dataclass) as the journal event ``name``."""

    def register(cls: type[R]) -> type[R]:
        cls.EVENT = name
        EVENTS[name] = cls
        return cls

    return register


def build_record(event: str, fields: Mapping, time: float | None = None) -> Record:
    """The record ``RunStore.append`` writes: strict (see :class:`JournalSchemaError`)."""
    cls = EVENTS.get(event)
    if cls is None:
        close = difflib.get_close_matches(event, list(EVENTS), n=1)
        raise JournalSchemaError(
            f"unknown journal event {event!r}" + (f" (did you mean {close[0]!r}?)" if close else "") + "; declare it in pbtnas/rundir/records.py"
        )
    return replace(cls.from_dict(fields, strict=True, where=f"journal event {event!r}"), time=time)


def record_from_json(data: Mapping) -> Record:
    """A journal object as its record (lenient; an unknown event name gives :class:`UnknownEvent`)."""
    name = data.get("event") if isinstance(data, Mapping) else None
    cls = EVENTS.get(name) if isinstance(name, str) else None
    if cls is None:
        rest = {k: v for k, v in data.items() if k not in ("event", "time")} if isinstance(data, Mapping) else {}
        when = data.get("time") if isinstance(data, Mapping) else None
        return UnknownEvent(name=str(name), time=when if isinstance(when, (int, float)) else None, extra=rest)
    return cls.from_dict(data)


def journal_problem(data: Mapping) -> str | None:
    """What makes a journal object read back unusable: a field its event declares holding a value
    of another kind (a fitness that is a string). None when every declared field it holds fits,
    and for an event this version does not know (a newer pbtnas wrote it)."""
    name = data.get("event")
    cls = EVENTS.get(name) if isinstance(name, str) else None
    if cls is None:
        return None
    for spec in cls.specs():
        if spec.key in data and not _fits(data[spec.key], spec.hint):
            return f"field {spec.key!r} is {type(data[spec.key]).__name__} {_short(data[spec.key])}, expected {_name(spec.hint)}"
    return None


# The events, in the order a run writes them. Field types are those of the JSON values written.


@_event("run_started")
@dataclass(frozen=True, kw_only=True)
class RunStarted(Record):
    """A new run directory was created (once per run)."""

    config: dict
    task: dict
    space: str
    genes: int
    bohb: dict | None = optional()
    nsga2: dict | None = optional()


@_event("member_created")
@dataclass(frozen=True, kw_only=True)
class MemberCreated(Record):
    """A member of the initial population (bohb: a trial's member) was made."""

    step: int | None = optional()
    slot: int
    uid: int
    genome: dict
    seed: int
    trial: int | None = optional()


@_event("trial_started")
@dataclass(frozen=True, kw_only=True)
class TrialStarted(Record):
    """bohb: a trial began (stratified start or TPE proposal)."""

    trial: int
    uid: int
    bracket: int
    rungs: list
    source: str
    genome: dict
    member_steps: int


@_event("member_trained")
@dataclass(frozen=True, kw_only=True)
class MemberTrained(Record):
    """One member trained one step and was evaluated (fitness -inf when it failed)."""

    step: int
    slot: int
    uid: int
    trial: int | None = optional()
    fitness: float
    metrics: dict
    seconds: float
    worker: str
    attempt: int
    peak_rss_mb: float
    member_steps: int | None = optional()
    started_early: bool | None = optional()
    error: str | None = optional()
    diverged: bool | None = optional()
    #: a run with several objectives: every objective's (and constrained) value by name, the
    #: fitness under "fitness"; absent in single-objective runs and for failed steps
    objectives: dict | None = optional()


@_event("member_retry")
@dataclass(frozen=True, kw_only=True)
class MemberRetry(Record):
    """A member's worker died mid-step; the step is submitted again."""

    step: int
    slot: int
    uid: int
    trial: int | None = optional()
    attempt: int
    reason: str | None


@_event("member_failed")
@dataclass(frozen=True, kw_only=True)
class MemberFailed(Record):
    """A member's retries ran out: it keeps its last checkpoint, fitness -inf."""

    step: int
    slot: int
    uid: int
    trial: int | None = optional()
    attempts: int
    reason: str | None


@_event("best_updated")
@dataclass(frozen=True, kw_only=True)
class BestUpdated(Record):
    """A member beat the best fitness seen so far (``best/`` was rewritten)."""

    step: int
    uid: int
    fitness: float


@_event("child_created")
@dataclass(frozen=True, kw_only=True)
class ChildCreated(Record):
    """Exploitation made a child that replaces a bottom member. The operator fields after
    ``seed`` are those of the operator that made it (see docs/journal.md)."""

    KEYS: ClassVar[dict[str, str]] = {"lambda_": "lambda", "from_": "from"}

    step: int
    slot: int
    uid: int
    parents: list
    replaced_uid: int
    genome: dict
    mode: str | None = optional()
    parent_steps: list | None = optional()
    operator: str
    primary: int | None
    donor: int | None
    genes_from_donor: list
    seed: int | None
    lambda_: float | None = optional()
    gamma: float | None = optional()
    tensors_moved: int | None = optional()
    tensors: list | None = optional()
    elements: int | None = optional()
    gene: str | None = optional()
    from_: Any = optional()
    to: Any = optional()
    tensors_adapted: int | None = optional()
    genes_perturbed: list | None = optional()
    self_donor: bool | None = optional()


@_event("member_replaced")
@dataclass(frozen=True, kw_only=True)
class MemberReplaced(Record):
    """The slot's old member left the population (written right after its ``child_created``)."""

    step: int
    slot: int
    old_uid: int
    new_uid: int
    old_fitness: float | None


@_event("member_refreshed")
@dataclass(frozen=True, kw_only=True)
class MemberRefreshed(Record):
    """random-sp: a member was shrink-perturbed in place (no child, same uid)."""

    KEYS: ClassVar[dict[str, str]] = {"lambda_": "lambda"}

    step: int
    slot: int
    uid: int
    operator: str
    primary: int | None
    donor: int | None
    genes_from_donor: list
    seed: int | None
    lambda_: float | None = optional()
    gamma: float | None = optional()


@_event("trial_promoted")
@dataclass(frozen=True, kw_only=True)
class TrialPromoted(Record):
    """bohb: a trial passed a Hyperband rung and trains on."""

    trial: int
    uid: int
    bracket: int
    rung: int
    at_step: int
    fitness: float


@dataclass(frozen=True, kw_only=True)
class _TrialEnded(Record):
    """bohb: a trial ended (the event name says how)."""

    trial: int
    uid: int
    bracket: int
    at_step: int
    fitness: float | None
    member_steps: int
    rung: int | None = optional()
    reason: str | None = optional()


@_event("trial_completed")
@dataclass(frozen=True, kw_only=True)
class TrialCompleted(_TrialEnded):
    """bohb: a trial trained all ``steps``."""


@_event("trial_pruned")
@dataclass(frozen=True, kw_only=True)
class TrialPruned(_TrialEnded):
    """bohb: Hyperband stopped a trial at a rung."""


@_event("trial_stopped")
@dataclass(frozen=True, kw_only=True)
class TrialStopped(_TrialEnded):
    """bohb: a trial was stopped because the budget is spent (``reason: budget``)."""


@_event("trial_failed")
@dataclass(frozen=True, kw_only=True)
class TrialFailed(_TrialEnded):
    """bohb: a trial's step failed (``reason``: the error's first line)."""


@_event("trial_voided")
@dataclass(frozen=True, kw_only=True)
class TrialVoided(Record):
    """bohb, on resume: a trial Optuna started after the last commit, never trained."""

    trial: int
    uid: int
    reason: str


@_event("step_done")
@dataclass(frozen=True, kw_only=True)
class StepDone(Record):
    """Step ``step`` is committed (the manifest was written before this line)."""

    step: int
    best_fitness: float | None
    population_fitness: list | None = optional()
    member_steps: int | None = optional()
    mode: str | None = optional()


@_event("run_resumed")
@dataclass(frozen=True, kw_only=True)
class RunResumed(Record):
    """``pbtnas resume`` continued the run: events it voids are dropped by readers."""

    from_step: int
    mode: str | None = optional()
    slot_steps: list | None = optional()
    member_steps: int | None = optional()
    running: list | None = optional()


@_event("lock_taken_over")
@dataclass(frozen=True, kw_only=True)
class LockTakenOver(Record):
    """The run directory's lock was left by a process that died; this one took it over."""

    previous: dict


@_event("checkpoint_skipped")
@dataclass(frozen=True, kw_only=True)
class CheckpointSkipped(Record):
    """resume --skip-damaged: a member's damaged checkpoint was skipped; it restarts fresh."""

    slot: int
    uid: int
    file: str
    reason: str
    restarts: str


@_event("config_changed")
@dataclass(frozen=True, kw_only=True)
class ConfigChanged(Record):
    """resume --set changed settings that may change on resume."""

    changes: dict


@_event("journal_repaired")
@dataclass(frozen=True, kw_only=True)
class JournalRepaired(Record):
    """A torn last journal line (a crash mid-write) was cut before the next event."""

    torn_bytes: int


@_event("journal_damaged")
@dataclass(frozen=True, kw_only=True)
class JournalDamaged(Record):
    """A resume found damaged lines in the journal (not UTF-8, not JSON, a field of the wrong
    kind) and skipped them; ``lines`` holds the first line numbers (at most 20)."""

    skipped_lines: int
    lines: list


@_event("pool_resized")
@dataclass(frozen=True, kw_only=True)
class PoolResized(Record):
    """The Ray backend's pool of workers changed size with the cluster (a node left or joined,
    an actor could not be placed); ``old``/``new`` are slots, ``reason`` says why."""

    old: int
    new: int
    reason: str


@_event("final_reevaluated")
@dataclass(frozen=True, kw_only=True)
class FinalReevaluated(Record):
    """top-k-reevaluated: the kept contenders were scored on the selection split."""

    contenders: list
    chosen_uid: int


@_event("run_finished")
@dataclass(frozen=True, kw_only=True)
class RunFinished(Record):
    """The run ended and ``summary.json`` was written (once per delivery: a finished run given
    more steps delivers again)."""

    final_metric: float | None
    best_fitness: float | None
    best_uid: int | None
    steps_done: int | None = optional()


@_event("run_extended")
@dataclass(frozen=True, kw_only=True)
class RunExtended(Record):
    """resume --set steps=N reopened a finished run: it trains on to ``steps`` and delivers again;
    the delivery after ``steps_done`` steps is kept in ``delivery`` (null when its summary was lost)."""

    steps_done: int
    steps: int
    delivery: str | None


# -- the best record, the manifest and the summary ------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class BestRecord(Typed):
    """``best/best.json`` and the manifest's ``best``: the best member seen so far."""

    uid: int
    fitness: float
    step: int
    genome: dict
    slot: int | None = optional()

    # Observers (docs/journal.md, "Observers") read ``runner.best``, which was a plain dict until it
    # became this record; an observer written then indexes it (``best["fitness"]``,
    # ``best.get("genome")``). These read the fields by their JSON keys, as ``best.json`` holds
    # them, so such code keeps working; :meth:`Codec.get` is the ``get``. New code reads the
    # attributes (``best.fitness``). Read-only: the record is frozen.
    def __getitem__(self, key: str) -> Any:
        """The value of JSON key ``key`` (``KeyError`` when the record does not hold it, like the dict did)."""
        if not self.has(key):
            raise KeyError(key)
        return self.to_dict()[key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.has(key)


@dataclass(kw_only=True)
class MemberEntry(Entry):
    """One slot of the population: the member in it and where it stands (the manifest's
    ``members``). The runner changes it in place as the member trains (fitness, checkpoint,
    failures); a child replaces it with a new entry."""

    slot: int
    uid: int
    genome: dict
    checkpoint: str | None  # relative to the run directory; None before its first step
    init_seed: int
    born_step: int = -1
    parents: list | None = None
    fitness: float | None = None
    failures: int = 0
    objectives: dict | None = optional()  # several objectives: its last values by name


def fitness_of(member: MemberEntry) -> float:
    """A member's last fitness for ranking (-inf before its first result)."""
    return float("-inf") if member.fitness is None else member.fitness


@dataclass(kw_only=True)
class TrialEntry(Entry):
    """bohb: where one trial stands (the manifest's ``trials``)."""

    number: int
    bracket: int
    source: str  # "stratified" (the run's initial population) or "tpe"
    state: str = "running"  # running | completed | pruned | stopped | failed
    steps_done: int = 0
    rungs_passed: list = field(default_factory=list)  # trained-step counts of the rungs it went past


@dataclass(frozen=True, kw_only=True)
class CheckpointEntry(Typed):
    """What the manifest records of a checkpoint it needs (verified on resume)."""

    sha256: str
    bytes: int
    uid: int | None
    step: int | None


@dataclass(frozen=True, kw_only=True)
class Manifest(Typed):
    """``population.json``: the last committed state of the run (what resume continues from).
    ``mode`` is absent for synchronous runs; the async fields (``slot_steps``, ``history``: per
    slot, step -> fitness, keys as strings) and the bohb ones (``member_steps``,
    ``budget_member_steps``, ``trials``) only in those modes (a schedule's ``manifest_part``).
    ``version`` and ``checkpoints`` are filled in by :meth:`RunStore.write_manifest
    <pbtnas.rundir.store.RunStore.write_manifest>`."""

    version: int = 0
    mode: str | None = optional()
    step_done: int
    steps: int
    next_uid: int
    member_steps: int | None = optional()
    budget_member_steps: int | None = optional()
    members: list[MemberEntry]
    slot_steps: list[int] | None = optional()
    history: dict[str, dict[str, float | None]] | None = optional()
    trials: list[TrialEntry] | None = optional()
    pareto: dict | None = optional()  # several objectives: the front kept so far (pbtnas.engine.front)
    objective_history: dict[str, dict[str, dict | None]] | None = optional()  # async with several objectives: per slot, step -> values
    best: BestRecord | None
    top: list[Contender] = field(default_factory=list)
    elapsed_s: float = 0.0
    finished: bool = False
    checkpoints: dict[str, CheckpointEntry] | None = None


@dataclass(frozen=True, kw_only=True)
class Summary(Typed):
    """``summary.json``: what a finished run delivered (written once per delivery). A schedule
    adds its own keys (bohb and nsga2: the ``member_steps`` ... ``hyperband``/``nsga2`` block, their
    ``summary_part``); a key that only some runs have is an :func:`optional` field, one line each."""

    algorithm: str
    task: str | None
    seed: int
    population: int
    steps: int
    steps_done: int
    final_selection: str
    best_fitness: float | None
    best_uid: int
    best_genome: dict
    fitness_name: str
    final_metric_name: str
    final_metric: float | None
    final_metrics: dict
    final_checkpoint: str
    reevaluated: list | None = optional()  # top-k-reevaluated: the contenders and their scores
    wall_time_s: float
    diverged_steps: float
    finished: bool
    earlier_deliveries: list | None = optional()  # a run given more steps: what it delivered before
    # bohb and nsga2 (nsga2 has no trials_pruned, and nsga2 instead of hyperband)
    member_steps: int | None = optional()
    budget_member_steps: int | None = optional()
    trials: int | None = optional()
    trials_completed: int | None = optional()
    trials_pruned: int | None = optional()
    trials_stopped: int | None = optional()
    trials_failed: int | None = optional()
    hyperband: dict | None = optional()
    nsga2: dict | None = optional()  # nsga2: its trial length and generation size
    # several objectives or constraints (docs/multi-objective.md); final_selection is then
    # "front-first-objective" (the best feasible front member by the first objective) unless the
    # front kept no member
    objectives: list[dict] | None = optional()  # the objectives as configured: name, direction
    constraints: list[str] | None = optional()  # as configured, e.g. "params<=50000"
    pareto_front: list[dict] | None = optional()  # every non-dominated snapshot kept, re-scored on the final metric
    hypervolume: list[dict] | None = optional()  # [{"step", "value"}]: the front's hypervolume after each step
    hypervolume_reference: dict[str, float] | None = optional()  # the reference point, by objective name
