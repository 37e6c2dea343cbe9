"""Export the network a run delivers, and load an export back.

``export_run(RUN_DIR, OUT)`` writes into ``OUT``:

* ``genome.json``       the architecture: gene -> option
* ``model.safetensors`` the deployable module's ``state_dict`` (classifier, EMA generator, actor)
* ``model.torchscript.pt`` a TorchScript file that plain torch loads, no pbtnas needed::

      net = torch.jit.load("OUT/model.torchscript.pt")

* ``example_input.pt`` / ``example_output.pt`` a small input and the module's output for it,
  to check a deployment reproduces the network
* ``export.json``       where it came from: task config, fitness, final metrics, run, member

``load(OUT)`` (re-exported as ``pbtnas.load``) rebuilds the eager module from the task, the
genome and the safetensors weights; when the task cannot be built here (an optional dependency
is missing) it returns the TorchScript module instead. Both are ready ``torch.nn.Module`` s in
eval mode.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterator

import torch

from pbtnas.errors import CheckpointError, PbtnasError, RunFileError, error_headline
from pbtnas.rundir.atomic import atomic_write_json
from pbtnas.rundir.checks import BEST_FILE, FINAL_FILE
from pbtnas.rundir.store import RunStore, _copy_of_a_checkpoint, damaged_best, file_sha256, load_member
from pbtnas.search.state import load_weights
from pbtnas.tasks.base import HasDataSplits, Task

EXPORT_FORMAT = "pbtnas-export"
EXPORT_VERSION = 1
FILES = {
    "genome": "genome.json",
    "weights": "model.safetensors",
    "torchscript": "model.torchscript.pt",
    "example_input": "example_input.pt",
    "example_output": "example_output.pt",
    "meta": "export.json",
}


def choose_checkpoint(run_dir: str | Path, which: str = "final", member: int | None = None, pick: str | None = None) -> tuple[Path, dict, list[str]]:
    """The checkpoint to export, facts about it, and notes for the user.

    ``final``: the run's final network (``summary.json``); a run that has not finished falls back
    to the best network seen so far, with a note. ``best``: the best-ever network. A run with no
    finished step is refused. ``member``: the member of that uid, from the newest checkpoint of it
    the run directory holds (:mod:`pbtnas.analysis.member_export`); ``pick``: the best feasible
    member of a multi-objective run's Pareto front that meets the constraints in ``pick``.
    """
    if member is not None or pick is not None:
        from pbtnas.analysis.member_export import member_checkpoint, picked_checkpoint

        return member_checkpoint(run_dir, member) if member is not None else picked_checkpoint(run_dir, str(pick))
    store = RunStore(run_dir)
    store.read_config()  # "not a pbtnas run directory" when it has no config
    notes: list[str] = []
    summary = store.read_summary()  # damaged: one error naming it
    try:
        manifest = store.read_manifest()
    except RunFileError:
        raise  # a linked manifest is refused, not passed over
    except PbtnasError:
        manifest = None
    steps_done = (manifest or {}).get("step_done", -1) + 1 if manifest else (summary or {}).get("steps_done", 0)
    if not summary and steps_done <= 0:
        raise PbtnasError(f"{run_dir} has no finished step yet: nothing to export (wait for the first step to finish, or resume the run)")
    remedy = "restore it from a copy, or export another network (--which best)"
    if which == "final" and store.finished():
        assert summary is not None
        path = store.verified(summary.get("final_checkpoint", FINAL_FILE), "summary.json", manifest or {}, remedy)
        _copy_of_recorded(store, path, manifest or {}, remedy)
        info = {
            "selection": summary.get("final_selection"),
            "uid": summary.get("best_uid"),
            "fitness": summary.get("best_fitness"),
            "final_metrics": summary.get("final_metrics", {}),
            "steps_done": summary.get("steps_done"),
        }
        return path, info, notes
    if which in ("soup-uniform", "soup-greedy"):
        return _soup_checkpoint(store, which, run_dir)
    if which not in ("final", "best"):
        raise PbtnasError(f"--which must be final, best, soup-uniform or soup-greedy, got {which!r}")
    best = store.read_best()
    path = store.resolve(BEST_FILE, "best/best.json")
    if best is None or not path.is_file():
        raise PbtnasError(f"{run_dir} has no best network checkpoint (best/member.pt); the run may be from an older pbtnas or damaged")
    problem = damaged_best(store, manifest) if manifest is not None else None
    if problem:
        raise CheckpointError(
            f"checkpoint {path} (the best network) is damaged: {problem}; restore it, "
            f"or let 'pbtnas resume {run_dir} --skip-damaged' take the best of the surviving members"
        )
    if which == "final":
        notes.append(f"the run has not finished ({steps_done} step(s) done): exporting the best network so far")
    info = {
        "selection": "best-ever",
        "uid": best.get("uid"),
        "fitness": best.get("fitness"),
        "step": best.get("step"),
        "final_metrics": {},
        "steps_done": steps_done,
    }
    return path, info, notes


def _copy_of_recorded(store: RunStore, path: Path, manifest: dict, remedy: str) -> None:
    """A final checkpoint that the manifest holds no checksum for (a run of an older pbtnas, or
    one stopped between its summary and its last commit) must be a byte copy of a checkpoint the
    run recorded or still holds: the final network is always a copy of the selected one."""
    records = manifest.get("checkpoints") or {}
    if store.relative(path) in records:
        return  # verified against its own checksum
    size = path.stat().st_size
    digest = file_sha256(path)
    if any(r.get("sha256") == digest for r in records.values() if isinstance(r, dict)):
        return
    if not _copy_of_a_checkpoint(store, path, size, digest):
        raise CheckpointError(f"checkpoint {path} is damaged: it is a copy of no checkpoint the run recorded; {remedy}")


def _soup_checkpoint(store: RunStore, which: str, run_dir) -> tuple[Path, dict, list[str]]:
    from pbtnas.analysis.soup import SOUP_FILE, read_soups

    soups = read_soups(store.root)
    soup = (soups or {}).get(which.split("-", 1)[1]) or {}
    if not isinstance(soup, dict) or not soup.get("checkpoint"):
        raise PbtnasError(
            f"{run_dir} has no {which.replace('-', ' ')}: make it with  pbtnas soup {run_dir}"
            + (f" ({soups['note']})" if soups and soups.get("note") else "")
        )
    info = {
        "selection": which,
        "uid": (soups or {}).get("delivered_uid"),
        "fitness": soup.get("fitness"),
        "final_metrics": soup.get("final_metrics") or {},
        "soup_members": soup.get("members"),
    }
    path = store.resolve(soup["checkpoint"], SOUP_FILE)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} (named in {store.root / SOUP_FILE}) is missing; make the soups again with: pbtnas soup {run_dir}")
    if soup.get("sha256") and file_sha256(path) != soup["sha256"]:
        raise CheckpointError(
            f"checkpoint {path} is damaged: its content differs from what was written (checksum mismatch); "
            f"make the soups again with: pbtnas soup {run_dir}"
        )
    return path, info, []


def example_input(task: Task, module: torch.nn.Module, input_shape: tuple[int, ...] | None = None, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A small batch the module accepts: from ``input_shape`` (without the batch dimension), the
    task's ``example_input()`` hook, a generator's ``latent_dim``, an agent's ``obs_shape``, or a
    few held-out examples of a data set task."""
    gen = torch.Generator().manual_seed(seed)
    hook = task.example_input
    if input_shape:
        sample = hook(batch) if hook is not None else None
        if torch.is_tensor(sample) and not sample.is_floating_point() and sample.dtype != torch.bool:
            # token ids or class indices: integers in the range the task's own inputs use
            low, high = int(sample.min()), int(sample.max()) + 1
            return torch.randint(low, high, (batch, *input_shape), generator=gen, dtype=sample.dtype)
        return torch.randn(batch, *input_shape, generator=gen)
    if hook is not None:
        return hook(batch)
    latent_dim = getattr(module, "latent_dim", None)
    if isinstance(latent_dim, int):
        return torch.randn(batch, latent_dim, generator=gen)
    obs_shape = getattr(module, "obs_shape", None)
    if obs_shape is not None:
        return torch.randn(batch, *tuple(int(d) for d in obs_shape), generator=gen)
    data = task.data if isinstance(task, HasDataSplits) else None
    if isinstance(data, Mapping):
        for split in ("test", "val", "train"):
            if split in data and isinstance(data[split], (tuple, list)) and torch.is_tensor(data[split][0]):
                return data[split][0][:batch].clone()
    raise PbtnasError("cannot tell what input this network takes: pass --input-shape, e.g. --input-shape 1,28,28")


def to_torchscript(module: torch.nn.Module, x: torch.Tensor) -> tuple[torch.jit.ScriptModule, str]:
    """Script the module (keeps control flow); fall back to tracing on ``x``. Either way the
    result must reproduce the eager output on ``x``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            try:
                expected = module(x)
            except Exception as exc:  # the user's network and an input it does not take: one line
                raise PbtnasError(
                    f"the network does not take the example input (shape {tuple(x.shape)}, {x.dtype}): "
                    f"{type(exc).__name__}: {error_headline(str(exc))}; pass --input-shape with the shape it takes, or give "
                    "the task an example_input(batch) method that returns a batch of real inputs"
                ) from None
            errors = []
            for method in ("script", "trace"):
                try:
                    scripted = torch.jit.script(module) if method == "script" else torch.jit.trace(module, x)
                    got = scripted(x)
                except Exception as exc:  # TorchScript raises many types; the next method may work
                    errors.append(f"{method}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                    continue
                if _same(expected, got):
                    return scripted, method
                errors.append(f"{method}: output differs from the eager module")
    raise PbtnasError("could not convert the network to TorchScript (" + "; ".join(errors) + ")")


def _compact(value: Any) -> Any:
    """``value`` with every tensor in storage of its own: ``torch.save`` writes a tensor's whole
    storage, so a 2x64 slice of a task's data set would carry the data set with it (2.4 MB for
    a 512-byte example)."""
    if torch.is_tensor(value):
        return value.detach().cpu().contiguous().clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_compact(v) for v in value)
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items()}
    return value


def _same(a: Any, b: Any) -> bool:
    if torch.is_tensor(a) and torch.is_tensor(b):
        return a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b):
        return all(_same(x, y) for x, y in zip(a, b))
    return a == b


def export_run(
    run_dir: str | Path,
    out: str | Path,
    which: str = "final",
    input_shape: tuple[int, ...] | None = None,
    trust_code: bool = False,
    member: int | None = None,
    pick: str | None = None,
) -> dict:
    """Export the final (or best) network of a run into ``out`` (or the member ``member``, or the
    front member ``pick`` chooses: see :func:`choose_checkpoint`); return ``export.json``'s content
    plus ``notes`` for the user. Raises :class:`PbtnasError` for a run with no finished step, and
    for a task file that is not the one the run recorded at start or lies inside the run folder
    (unless ``trust_code``; see :mod:`pbtnas.tasks.trust`)."""
    from safetensors.torch import save_file

    from pbtnas.rundir.runinfo import task_code_record
    from pbtnas.tasks import add_import_roots, build_task, portable_task_config, recorded_start_dir
    from pbtnas.tasks.devices import task_config_here
    from pbtnas.tasks.trust import check_run_task

    path, info, notes = choose_checkpoint(run_dir, which, member, pick)
    store = RunStore(run_dir)
    config = store.read_config()
    genome, state, meta = load_member(path)
    check_run_task(run_dir, config["task"], trust_code)  # before any task code is imported
    start = recorded_start_dir(run_dir)
    if start:  # a task module or a task.env module beside where the run started, from any folder
        add_import_roots([start])
    task = build_task(task_config_here(config["task"]))  # a GPU run exports on a CPU machine too
    module = task.build_module(genome, state).cpu().eval()
    info_extra = task.export_info()
    x = example_input(task, module, input_shape)
    scripted, method = to_torchscript(module, x)
    with torch.no_grad():
        y = module(x)

    record = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "task": {**portable_task_config(config["task"]), **info_extra.get("options", {})},
        "input": info_extra.get("input"),
        **{k: v for k, v in info_extra.items() if k not in ("options", "input")},
        "task_class": type(task).__name__,
        # the task file (and task.env module) this export was made with: pbtnas.load imports only those
        "task_code": task_code_record(config["task"].get("name"), type(task), config["task"]),
        "module_class": type(module).__name__,
        "space": task.space.name,
        "fitness_name": task.fitness_name,
        "final_metric_name": task.final_metric_name,
        "source_run": Path(run_dir).name,
        "algorithm": config.get("algorithm"),
        "seed": config.get("seed"),
        "member": {**info, "checkpoint": store.relative(path)},
        "torchscript_method": method,
        "input_shape": list(x.shape[1:]),
        "files": FILES,
        "genome": dict(genome),
        "notes": notes,
    }
    with _staged(Path(out)) as stage:
        atomic_write_json(stage / FILES["genome"], dict(genome))
        weights = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
        save_file(weights, str(stage / FILES["weights"]), metadata={"format": EXPORT_FORMAT, "genome": json.dumps(genome)})
        scripted.save(str(stage / FILES["torchscript"]))
        torch.save(_compact(x), stage / FILES["example_input"])
        torch.save(_compact(y), stage / FILES["example_output"])
        # what pbtnas.load verifies before it reads a file: a damaged export is one error line
        record["sha256"] = {name: file_sha256(stage / name) for name in (FILES["weights"], FILES["torchscript"])}
        atomic_write_json(stage / FILES["meta"], record)
        _share(stage)
    return record


@contextlib.contextmanager
def _staged(out: Path) -> Iterator[Path]:
    """A fresh folder next to ``out`` that the export is written into, moved into place only once
    every file is written: an export is complete or absent, never half-made. On failure it is
    removed, with the folders above ``out`` this call created."""
    created = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield stage
        os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes it 0700; the export is shared like other folders
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        if not out.exists():
            os.rename(stage, out)
        else:  # an earlier export in --out: each file is replaced whole
            for item in stage.iterdir():
                os.replace(item, out / item.name)
            stage.rmdir()
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created is not None and created != out:
            shutil.rmtree(created, ignore_errors=True)
        raise


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _share(out: Path) -> None:
    """Give the exported files the usual permissions (temporary files are created 0600)."""
    umask = _umask()
    for name in FILES.values():
        if (out / name).is_file():
            os.chmod(out / name, 0o666 & ~umask)


def read_export(directory: str | Path) -> dict:
    """``export.json`` of an export folder, checked."""
    path = _inside(Path(directory), Path(directory) / FILES["meta"])
    if not path.is_file():
        raise PbtnasError(f"{directory} is not a pbtnas export (no {FILES['meta']}); create one with 'pbtnas export'")
    try:
        with open(path) as fh:
            meta = json.load(fh)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} cannot be read: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{path} is not a pbtnas export description")
    if meta.get("version", 0) > EXPORT_VERSION:
        raise CheckpointError(f"{path} was written by a newer pbtnas (export version {meta['version']})")
    return meta


def load(directory: str | Path, prefer: str = "eager", trust_code: bool = False) -> torch.nn.Module:
    """A ready ``torch.nn.Module`` (eval mode) from an export folder.

    ``prefer="eager"`` rebuilds the task's own module class from the genome and loads the
    safetensors weights; if that is impossible here it falls back to the TorchScript file with a
    warning. ``prefer="torchscript"`` loads the TorchScript file directly.

    A task *file* is imported only when it is the file the export recorded (same path and
    SHA-256) and lies outside the export folder, or with ``trust_code=True``; otherwise the
    TorchScript file is used, with a warning naming the file (see :mod:`pbtnas.tasks.trust`).
    """
    directory = Path(directory)
    if prefer not in ("eager", "torchscript"):
        raise PbtnasError(f"prefer must be 'eager' or 'torchscript', got {prefer!r}")
    meta = read_export(directory)
    for name in (FILES["weights"], FILES["torchscript"]):
        _verify(directory, name, meta)
    if prefer == "eager":
        try:
            return _load_eager(directory, meta, trust_code)
        except CheckpointError:
            raise  # damaged weights: the TorchScript file of the same export is no safer bet
        except (PbtnasError, ImportError, RuntimeError, OSError) as exc:
            warnings.warn(f"cannot rebuild {meta.get('module_class')} here ({exc}); using the TorchScript file", stacklevel=2)
    path = directory / FILES["torchscript"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch >= 2.9 flags TorchScript as deprecated
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError and others for a file it cannot read
        raise CheckpointError(f"{path} cannot be loaded ({type(exc).__name__}: {error_headline(str(exc))}); export the run again") from None
    return module.eval()


def _verify(directory: Path, name: str, meta: dict) -> Path:
    """``directory/name`` checked before it is read: inside the folder (no symbolic link out of
    it), present, and (for an export that recorded them) of the SHA-256 ``export.json`` holds."""
    path = _inside(directory, directory / name)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: the export is incomplete; export the run again")
    digests = meta.get("sha256")
    expected = digests.get(name) if isinstance(digests, dict) else None
    if expected is not None and file_sha256(path) != expected:
        raise CheckpointError(f"{path} is damaged: its content differs from what was exported (checksum mismatch); export the run again")
    return path


def _inside(directory: Path, path: Path) -> Path:
    """``path`` if it lies inside ``directory`` once symbolic links are followed; an export never
    reads a file elsewhere."""
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        raise CheckpointError(f"{path} leads outside the export folder {directory} (a symbolic link?): refused") from None
    return path


def _load_eager(directory: Path, meta: dict, trust_code: bool = False) -> torch.nn.Module:
    from safetensors.torch import load_file

    from pbtnas.tasks import build_task
    from pbtnas.tasks.devices import task_config_here
    from pbtnas.tasks.trust import check_task_code

    check_task_code(meta.get("task"), directory, meta.get("task_code"), trust_code, "export folder")  # before any import
    task = build_task(task_config_here(meta["task"]))
    genome = task.space.validate(meta["genome"])
    state = task.init_state(genome, 0)
    module = task.build_module(genome, state).cpu()
    path = directory / FILES["weights"]
    try:
        weights = load_file(str(path))
    except Exception as exc:  # SafetensorError and others: a damaged file, one pbtnas error
        raise CheckpointError(f"{path} cannot be read ({type(exc).__name__}: {error_headline(str(exc))}); export the run again") from None
    load_weights(module, weights)
    module.pbtnas_genome = dict(genome)  # type: ignore[assignment]  # a plain attribute, not a submodule
    if meta.get("classes") is not None:
        module.pbtnas_classes = list(meta["classes"])  # type: ignore[assignment]  # output k means the data's label classes[k]
    return module.eval()
