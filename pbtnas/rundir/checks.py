"""Checks of what a run directory holds before anything trusts it: the shape of the manifest
(``population.json``) and of the summary. The best network's checkpoint (``best/member.pt``) is
checked where checkpoints are read (:func:`pbtnas.rundir.store.damaged_best`).

A manifest that was edited by hand, truncated to ``{}``, copied from another program or another
run must stop ``resume``, ``status`` and ``export`` with one line naming the file and what is
wrong, never with a ``KeyError`` deep in the engine. The checks are about shape (keys and kinds of
values); whether the genomes fit the task's search space is checked where the task is known
(:func:`check_genomes`).
"""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from pathlib import Path
from typing import Any

from pbtnas.errors import CheckpointError, GenomeError, RunFileError
from pbtnas.rundir.records import BestRecord, CheckpointEntry, Codec, Manifest, MemberEntry, Summary
from pbtnas.search.final_selection import Contender

#: the kinds of JSON value the checks name (None: null), by what a record field is typed
_KINDS: tuple[type, ...] = (int, float, str, bool, list, dict)


def _kinds_of(hint: Any, nullable: bool) -> tuple:
    """The kinds of JSON value a field typed ``hint`` holds: ``int | None`` -> ``(int, None)``; a
    nested record or dataclass is an object, ``list[X]`` a list, ``dict[K, V]`` an object. None
    only when ``nullable``."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    kinds: list = []
    for arg in args:
        if arg is type(None):
            continue
        base = typing.get_origin(arg) or arg
        if isinstance(base, type) and (issubclass(base, Codec) or dataclasses.is_dataclass(base)):
            base = dict
        if base not in _KINDS:
            raise TypeError(f"checks.py: no JSON kind for a field typed {hint!r}")
        kinds.append(base)
    if nullable and type(None) in args:
        kinds.append(None)
    return tuple(kinds)


def _fields(record: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(record) if f.name not in getattr(record, "SKIP", ())]


def record_kinds(record: type, names: tuple[str, ...] | None = None) -> dict[str, tuple]:
    """What each field of ``record`` (a record type of :mod:`pbtnas.rundir.records`, or a plain
    dataclass), or of the ``names`` among them in that order, must hold in JSON, by JSON key. An
    :func:`~pbtnas.rundir.records.optional` field is never written as null (it is left out), so
    null is not among its kinds; a plain field typed ``X | None`` may be null."""
    hints = typing.get_type_hints(record)
    keys = getattr(record, "KEYS", {})
    by_key = {keys.get(f.name, f.name): f for f in _fields(record)}
    return {key: _kinds_of(hints[by_key[key].name], not by_key[key].metadata.get("optional")) for key in (names or tuple(by_key))}


def required_keys(record: type) -> tuple[str, ...]:
    """The JSON keys of ``record``'s fields that have no default (a writer always sets them)."""
    keys = getattr(record, "KEYS", {})
    no_default = [f for f in _fields(record) if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    return tuple(keys.get(f.name, f.name) for f in no_default)


#: keys of one member of the manifest's ``members`` and what each must hold (None: may be null);
#: ``objectives`` is an optional field, never written as null, but a member whose ``objectives``
#: is null has always been read as one without values, so a manifest holding it stays readable
MEMBER_KEYS: dict[str, tuple] = {**record_kinds(MemberEntry), "objectives": (dict, None)}
MEMBER_REQUIRED = required_keys(MemberEntry)
#: the best record's plain fields (its optional ``slot`` has never been checked)
BEST_KEYS = record_kinds(BestRecord, required_keys(BestRecord))
TOP_KEYS = record_kinds(Contender)
#: top-level keys, required ones first. By hand, not ``required_keys(Manifest)``: the type gives
#: ``best`` no default (every writer sets it), but a manifest without it reads as one with no best
#: yet, and has never been refused for it
MANIFEST_REQUIRED = record_kinds(Manifest, ("step_done", "steps", "next_uid", "members"))
#: the others in the order the manifest is written (of several bad keys, the first is named)
MANIFEST_OPTIONAL = {key: kinds for key, kinds in record_kinds(Manifest).items() if key not in MANIFEST_REQUIRED}
#: a checksum record's keys that resume verifies (its ``uid`` and ``step`` are for the reader only)
CHECKPOINT_KEYS = record_kinds(CheckpointEntry, ("sha256", "bytes"))
BEST_FILE = "best/member.pt"
FINAL_FILE = "final/member.pt"
#: the keys of a finished run's ``summary.json`` that the verbs read. Named by hand: checking every
#: field of :class:`Summary` would refuse summaries that have always been read (an older pbtnas's,
#: a tool's stand-in), for keys no verb reads
SUMMARY_READ: tuple[str, ...] = ("finished", "steps_done", "best_uid", "best_fitness", "best_genome")
SUMMARY_READ += ("final_metric_name", "final_metric", "final_metrics", "final_checkpoint", "diverged_steps")
#: what each of them must hold, from :class:`Summary`; ``best_fitness`` by hand: the type admits
#: null, but the verbs that read it need the fitness of a delivered network, and a null one has
#: always been refused
SUMMARY_KEYS: dict[str, tuple] = {**record_kinds(Summary, SUMMARY_READ), "best_fitness": (float,)}
#: what every summary holds (an older pbtnas, or a tool's stand-in, may lack the others; a verb
#: that needs more names them: :func:`check_summary`'s ``required``)
SUMMARY_REQUIRED = ("finished",)


def _fits(value: Any, kinds: tuple) -> bool:
    for kind in kinds:
        if kind is None and value is None:
            return True
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if kind is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
            return True
        if kind in (str, bool, list, dict) and isinstance(value, kind):
            return True
    return False


def _kind(kinds: tuple) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list", dict: "an object", None: "null"}
    return " or ".join(names[k] for k in kinds)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_keys(data: dict, kinds: dict, where: str, required=()) -> None:
    for key in required:
        if key not in data:
            raise ValueError(f"{where} has no {key!r}")
    for key, allowed in kinds.items():
        if key in data and not _fits(data[key], allowed):
            raise ValueError(f"{where}'s {key!r} must be {_kind(allowed)}, got {_short(data[key])}")


def _problem(data: Any) -> str | None:
    """What is wrong with a manifest's shape, or None."""
    if not isinstance(data, dict):
        return f"expected an object with a list of members, got {type(data).__name__}"
    try:
        _check_keys(data, {**MANIFEST_REQUIRED, **MANIFEST_OPTIONAL}, "the manifest", required=tuple(MANIFEST_REQUIRED))
        if data["step_done"] < -1 or data["steps"] < 1 or data["next_uid"] < 0:
            raise ValueError(f"step_done {data['step_done']}, steps {data['steps']}, next_uid {data['next_uid']} are out of range")
        members = data["members"]
        if not members:
            raise ValueError("it has no members")
        uids = set()
        for index, member in enumerate(members):
            where = f"member {index}"
            if not isinstance(member, dict):
                raise ValueError(f"{where} is {_short(member)}, not an object")
            unknown = sorted(set(member) - set(MEMBER_KEYS))
            if unknown:
                raise ValueError(f"{where} has unknown key(s) {unknown}")
            _check_keys(member, MEMBER_KEYS, where, required=MEMBER_REQUIRED)
            if member["slot"] != index:
                raise ValueError(f"{where} says slot {member['slot']}")
            if member["uid"] in uids:
                raise ValueError(f"member uid {member['uid']} appears twice")
            uids.add(member["uid"])
            if not all(isinstance(k, str) for k in member["genome"]):
                raise ValueError(f"{where}'s genome has keys that are not gene names")
        if data.get("best") is not None:
            _check_keys(data["best"], BEST_KEYS, "the best record", required=tuple(BEST_KEYS))
        for index, contender in enumerate(data.get("top") or []):
            if not isinstance(contender, dict):
                raise ValueError(f"top entry {index} is not an object")
            _check_keys(contender, TOP_KEYS, f"top entry {index}", required=tuple(TOP_KEYS))
        for rel, record in (data.get("checkpoints") or {}).items():
            if not isinstance(record, dict):
                raise ValueError(f"the checksum record of {rel} is not an object")
            _check_keys(record, CHECKPOINT_KEYS, f"the checksum record of {rel}", required=tuple(CHECKPOINT_KEYS))
        slot_steps = data.get("slot_steps")
        if slot_steps is not None and (len(slot_steps) != len(members) or not all(_fits(s, (int,)) for s in slot_steps)):
            raise ValueError(f"slot_steps must hold one integer per member, got {_short(slot_steps)}")
        if not all(isinstance(t, dict) for t in data.get("trials") or []):
            raise ValueError("its trials are not objects")
    except ValueError as exc:
        return str(exc)
    return None


def check_manifest(data: Any, path: str | Path) -> dict:
    """``data`` (a parsed ``population.json``) if it has the shape of a pbtnas manifest; else one
    :class:`CheckpointError` naming ``path`` and the first thing wrong."""
    problem = _problem(data)
    if problem:
        raise CheckpointError(f"{path} is damaged or not a pbtnas manifest: {problem}; restore it from a copy, or start a new run")
    return data


def check_summary(data: Any, path: str | Path, remedy: str, required: tuple = SUMMARY_REQUIRED) -> dict:
    """``data`` (a parsed ``summary.json``) if it holds the ``required`` keys and every key the
    verbs read has the kind they expect; else one :class:`RunFileError` naming ``path``, what is
    wrong and ``remedy``."""
    try:
        if not isinstance(data, dict):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        _check_keys(data, SUMMARY_KEYS, "it", required=required)
    except ValueError as exc:
        raise RunFileError(f"{path} is damaged or not a pbtnas summary: {exc}; {remedy}") from None
    return data


def check_genomes(manifest: dict, space, path: str | Path) -> None:
    """Every genome the manifest holds fits ``space`` (else one :class:`CheckpointError`)."""
    genomes = [(f"member {m['uid']} (slot {m['slot']})", m["genome"]) for m in manifest["members"]]
    if manifest.get("best"):
        genomes.append((f"the best member {manifest['best']['uid']}", manifest["best"]["genome"]))
    for who, genome in genomes:
        try:
            space.validate(genome)
        except GenomeError as exc:
            raise CheckpointError(
                f"{path}: the genome of {who} does not fit the task's search space ({exc}): the manifest is damaged or from another run"
            ) from None
