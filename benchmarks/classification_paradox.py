"""Tables for the classification paradox (see classification_paradox.sh): per variant and seed,
the delivered network's validation and test accuracy; the gap between them against the final
population's; and, for runs with a selection split, each top-k contender's scores.

    python benchmarks/classification_paradox.py results/paradox
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from pbtnas.rundir.store import RunStore, load_member
from pbtnas.tasks import build_task


def accuracies(task, checkpoint: Path) -> dict[str, float]:
    genome, state, _ = load_member(checkpoint)
    net = task.member(genome, state).model.eval()
    out = {}
    with torch.no_grad():
        for split in ("val", "test", "selection"):
            if len(task.data[split][0]):
                out[split] = task._accuracy(net, split)[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the folder classification_paradox.sh wrote")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, contenders = [], []
    for variant in sorted(p for p in Path(args.out).iterdir() if p.is_dir()):
        for run in sorted((variant / "runs").glob("pbtnas-s*")):
            summary = RunStore(run).read_summary()
            if not summary or not summary.get("finished"):
                continue
            config = RunStore(run).read_config()
            task = build_task(config["task"])
            manifest = RunStore(run).read_manifest()
            population = [accuracies(task, RunStore(run).absolute(m["checkpoint"])) for m in manifest["members"]]
            delivered = accuracies(task, run / "final" / "member.pt")
            rows.append(
                {
                    "variant": variant.name,
                    "seed": summary["seed"],
                    "val": delivered["val"],
                    "test": delivered["test"],
                    "gap": delivered["val"] - delivered["test"],
                    "population_gap": float(np.mean([p["val"] - p["test"] for p in population])),
                    "population_best_test": max(p["test"] for p in population),
                    "population_mean_test": float(np.mean([p["test"] for p in population])),
                    "wall_s": summary["wall_time_s"],
                }
            )
            for entry in summary.get("reevaluated", []):
                acc = accuracies(task, run / "best" / "top" / f"uid{entry['uid']:05d}.pt")
                contenders.append(
                    {
                        "variant": variant.name,
                        "seed": summary["seed"],
                        "uid": entry["uid"],
                        "val": entry["fitness"],
                        "selection": entry["selection_score"],
                        "test": acc["test"],
                        "chosen": entry["uid"] == summary["best_uid"],
                    }
                )
    print("| variant | seed | delivered val | delivered test | val − test | final population: mean val − test | mean test | best test | wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['variant']} | {r['seed']} | {r['val']:.4f} | {r['test']:.4f} | {r['gap']:+.4f} | "
            f"{r['population_gap']:+.4f} | {r['population_mean_test']:.4f} | {r['population_best_test']:.4f} | "
            f"{r['wall_s']:.0f} |"
        )
    print()
    for variant in sorted({r["variant"] for r in rows}):
        tests = [r["test"] for r in rows if r["variant"] == variant]
        print(f"{variant}: delivered test accuracy {np.mean(tests):.4f} ± {np.std(tests):.4f} over {len(tests)} seed(s)")
    if contenders:
        print("\n| variant | seed | member | val (fitness) | selection split | test | chosen |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for c in contenders:
            print(
                f"| {c['variant']} | {c['seed']} | {c['uid']} | {c['val']:.4f} | {c['selection']:.4f} | "
                f"{c['test']:.4f} | {'yes' if c['chosen'] else ''} |"
            )
    print(json.dumps({"rows": rows, "contenders": contenders}))


if __name__ == "__main__":
    main()
