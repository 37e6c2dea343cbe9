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

import numbers
from pathlib import Path
from typing import Any

from pbtnas.errors import CheckpointError, GenomeError, RunFileError

#: keys of one member of the manifest's ``members`` and what each must hold (None: may be null)
MEMBER_KEYS: dict[str, tuple] = {
    "slot": (int,),
    "uid": (int,),
    "genome": (dict,),
    "checkpoint": (str, None),
    "init_seed": (int,),
    "born_step": (int,),
    "parents": (list, None),
    "fitness": (float, None),
    "failures": (int,),
    "objectives": (dict, None),
}
MEMBER_REQUIRED = ("slot", "uid", "genome", "checkpoint", "init_seed")
BEST_KEYS = {"uid": (int,), "fitness": (float,), "step": (int,), "genome": (dict,)}
TOP_KEYS = {"uid": (int,), "fitness": (float,), "step": (int,), "genome": (dict,), "checkpoint": (str,)}
#: top-level keys, required ones first
MANIFEST_REQUIRED = {"step_done": (int,), "steps": (int,), "next_uid": (int,), "members": (list,)}
MANIFEST_OPTIONAL = {
    "version": (int,),
    "mode": (str,),
    "finished": (bool,),
    "best": (dict, None),
    "top": (list,),
    "elapsed_s": (float,),
    "checkpoints": (dict, None),
    "slot_steps": (list,),
    "history": (dict,),
    "trials": (list,),
    "member_steps": (int,),
    "budget_member_steps": (int,),
    "pareto": (dict,),
    "objective_history": (dict,),
}
BEST_FILE = "best/member.pt"
FINAL_FILE = "final/member.pt"
#: keys of a finished run's ``summary.json`` that the verbs read, and what each must hold
SUMMARY_KEYS: dict[str, tuple] = {
    "finished": (bool,),
    "steps_done": (int,),
    "best_uid": (int,),
    "best_fitness": (float,),
    "best_genome": (dict,),
    "final_metric_name": (str,),
    "final_metric": (float, None),
    "final_metrics": (dict,),
    "final_checkpoint": (str,),
    "diverged_steps": (float,),
}
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
        _check_keys(data, {**MANIFEST_REQUIRED, **MANIFEST_OPTIONAL}, "the manifest", required=MANIFEST_REQUIRED)
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
            _check_keys(record, {"sha256": (str,), "bytes": (int,)}, f"the checksum record of {rel}", required=("sha256", "bytes"))
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
