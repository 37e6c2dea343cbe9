"""Which checkpoint ``pbtnas export --member UID`` and ``--pick "params<=50000"`` export.

``--member UID``: any member whose checkpoint is still in the run directory - a Pareto front
member's own copy (``pareto_front[].checkpoint``), else its newest population checkpoint
(``checkpoints/step_XXXX/uidNNNN.pt``; a run keeps the last ``keep_checkpoints`` steps), else the
best or final network when it is that member. ``--pick``: the best feasible member of a
multi-objective run's front by its first objective (:func:`pbtnas.analysis.front.pick`).
Either refuses with one line naming what is available.
"""

from __future__ import annotations

from pathlib import Path

from pbtnas.analysis.front import pick, read_front, values_of
from pbtnas.errors import PbtnasError, RunFileError
from pbtnas.rundir.checks import BEST_FILE, FINAL_FILE
from pbtnas.rundir.store import RunStore


def _manifest(store: RunStore) -> dict:
    try:
        return store.read_manifest()
    except RunFileError:
        raise
    except PbtnasError:
        return {}


def stored_members(store: RunStore) -> dict[int, tuple[int, str]]:
    """uid -> (step, checkpoint relative to the run directory) of the newest population checkpoint
    of every member the run directory still holds (:meth:`RunStore.newest_member_checkpoints`)."""
    return store.newest_member_checkpoints()


def _ranges(uids: list[int]) -> str:
    """``0-3, 7, 9-10``: a sorted list of uids, runs of consecutive ones joined."""
    runs: list[list[int]] = []
    for uid in sorted(uids):
        if runs and runs[-1][1] == uid - 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def member_checkpoint(run_dir: str | Path, uid: int) -> tuple[Path, dict, list[str]]:
    """The checkpoint of member ``uid``, facts about it and notes (see the module docstring)."""
    store = RunStore(run_dir)
    store.read_config()  # "not a pbtnas run directory" when it has no config
    summary = store.read_summary() or {}
    manifest = _manifest(store)
    front = read_front(summary)
    info: dict = {"selection": "member", "uid": uid, "final_metrics": {}}
    on_front = next((m for m in (front.members if front else []) if m.get("uid") == uid), None)
    candidates: list[tuple[str, str, dict]] = []
    if on_front is not None and on_front.get("checkpoint"):
        facts = {"step": on_front.get("step"), "objectives": on_front.get("objectives"), "final_objectives": on_front.get("final_objectives")}
        candidates.append((str(on_front["checkpoint"]), "summary.json", facts))
    stored = stored_members(store)
    if uid in stored:
        step = stored[uid][0]
        trained = [e for e in store.iter_events("member_trained") if e.get("uid") == uid and e.get("step") == step]
        facts = {"step": step, "fitness": trained[-1].get("fitness") if trained else None}  # the last of a redone step
        if trained and trained[-1].get("objectives"):
            facts["objectives"] = trained[-1]["objectives"]
        candidates.append((stored[uid][1], "population.json", facts))
    best = store.read_best() or {}
    if best.get("uid") == uid:
        candidates.append((BEST_FILE, "best/best.json", {"step": best.get("step"), "fitness": best.get("fitness")}))
    if summary.get("finished") and summary.get("best_uid") == uid:
        candidates.append((summary.get("final_checkpoint", FINAL_FILE), "summary.json", {"fitness": summary.get("best_fitness")}))
    for relative, recorded_in, facts in candidates:
        if (store.root / relative).is_file():
            path = store.verified(relative, recorded_in, manifest, "restore it from a copy, or export another member")
            info.update({k: v for k, v in facts.items() if v is not None})
            if "fitness" not in info and info.get("objectives"):
                info["fitness"] = values_of({"objectives": info["objectives"]}, "objectives").get("fitness")
            return path, info, []
    available = sorted(set(stored) | {m["uid"] for m in (front.members if front else []) if isinstance(m.get("uid"), int)})
    raise PbtnasError(
        f"member {uid} has no checkpoint in {run_dir}"
        + (f"; members with one: {_ranges(available)}" if available else "; it holds no member checkpoint")
        + (" (a run keeps the last keep_checkpoints steps' checkpoints and its front's)" if available else "")
    )


def picked_checkpoint(run_dir: str | Path, where: str) -> tuple[Path, dict, list[str]]:
    """The front member ``--pick WHERE`` chooses, with its facts."""
    store = RunStore(run_dir)
    store.read_config()
    front = read_front(store.read_summary())
    if front is None:
        raise PbtnasError(
            f"{run_dir} has no Pareto front (a finished run with several objectives or a constraint has one): "
            f"export its final network, or a member with --member UID"
        )
    chosen = pick(front, where, run_dir)
    path, info, notes = member_checkpoint(run_dir, int(chosen["uid"]))
    info["selection"] = f"pick {where}" if where.strip() else "pick"
    return path, info, notes


__all__ = ["member_checkpoint", "picked_checkpoint", "stored_members"]
