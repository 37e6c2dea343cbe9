"""Fault table (docs/faults.md): driver kills, worker kills, damaged files, a torn journal and a
concurrent resume, each placed with PBTNAS_FAULT (no timing windows), through the pbtnas CLI on the
simulated task. Usage: python benchmarks/fault_table.py [N_DRIVER_KILLS]  (about 30 minutes on 2 cores)."""

import json
import os
import random
import subprocess
import sys
import tempfile
import time

from pbtnas.rundir.store import RunStore

PY = sys.executable
BASE = [
    "run",
    "simulated",
    "--population",
    "6",
    "--steps",
    "5",
    "--seed",
    "5",
    "--workers",
    "2",
    "--quiet",
    "--set",
    "task.step_seconds=0.05",
    "--set",
    "loggers=none",
]
root = tempfile.mkdtemp(prefix="ft-")
rng = random.Random(11)
rows = []


def cli(args, fault=None):
    env = dict(os.environ)
    env.pop("PBTNAS_FAULT", None)
    if fault:
        env["PBTNAS_FAULT"] = fault
    return subprocess.run([PY, "-m", "pbtnas", *args], capture_output=True, text=True, env=env, timeout=600)


def fp(d):
    s = RunStore(d).read_summary() or {}
    trace = [(e["step"], e["slot"], e["uid"], e["fitness"]) for e in RunStore(d).iter_events("member_trained")]
    return (s.get("final_metric"), s.get("best_uid"), s.get("best_genome"), trace)


def n(d, kind):
    return len(list(RunStore(d).iter_events(kind)))


ref = f"{root}/ref"
r = cli(BASE + ["--out", ref])
assert r.returncode == 0, r.stderr
REF = fp(ref)
pairs = sorted({(st, uid) for st, _, uid, _ in REF[3]})


def record(kind, held, note=""):
    rows.append((kind, held, note))
    print(kind, "HELD" if held else "FAILED", note, flush=True)


# 1. driver kills (single), at random committed steps or while a worker is busy
for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 20):
    point = rng.choice([f"after-step:{rng.randrange(4)}:kill", f"dispatched:{rng.randrange(5)}:kill"])
    d = f"{root}/k{i}"
    a = cli(BASE + ["--out", d], point)
    b = cli(["resume", d, "--quiet"])
    record("driver kill", a.returncode == -9 and b.returncode == 0 and fp(d) == REF, point)
# 2. double kills
for i in range(6):
    p1, p2 = sorted(rng.sample(range(4), 2))
    d = f"{root}/dk{i}"
    a = cli(BASE + ["--out", d], f"after-step:{p1}:kill")
    b = cli(["resume", d, "--quiet"], f"dispatched:{p2 + 1}:kill")
    c = cli(["resume", d, "--quiet"])
    record(
        "double driver kill",
        a.returncode == -9 and b.returncode == -9 and c.returncode == 0 and fp(d) == REF,
        f"after-step:{p1} then dispatched:{p2 + 1}",
    )
# 3. worker kills: 1-3 workers die in one run, at chosen (uid, step, phase)
for i in range(8):
    chosen = rng.sample(pairs, rng.randint(1, 3))
    fault = ",".join(f"worker:{u}:{s}:{rng.choice(['start', 'trained', 'saved'])}:kill" for s, u in chosen)
    d = f"{root}/w{i}"
    a = cli(BASE + ["--out", d], fault)
    ok = a.returncode == 0 and n(d, "member_retry") == len(chosen) and n(d, "member_failed") == 0 and fp(d) == REF
    record("worker kill", ok, f"{fault}: retries {n(d, 'member_retry')}, failed {n(d, 'member_failed')}")
# 4. damaged checkpoints, each kind: one error line naming the file; then --skip-damaged finishes
for kind in ["truncated", "zero-length", "zero-filled", "bit-flipped", "deleted", "another-members"]:
    d = f"{root}/dmg-{kind}"
    cli(BASE + ["--out", d], "after-step:1:kill")
    store = RunStore(d)
    members = store.read_manifest()["members"]
    path, other = store.absolute(members[0]["checkpoint"]), store.absolute(members[1]["checkpoint"])
    data = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "zero-length":
        path.write_bytes(b"")
    elif kind == "zero-filled":
        path.write_bytes(bytes(len(data)))
    elif kind == "bit-flipped":
        b2 = bytearray(data)
        b2[len(data) // 2] ^= 1
        path.write_bytes(bytes(b2))
    elif kind == "deleted":
        path.unlink()
    else:
        path.write_bytes(other.read_bytes())
    a = cli(["resume", d, "--quiet"])
    lines = [line for line in a.stderr.splitlines() if line.strip()]
    b = cli(["resume", d, "--quiet", "--skip-damaged"])
    ok = (
        a.returncode == 2
        and len(lines) == 1
        and lines[0].startswith("error:")
        and str(path) in lines[0]
        and b.returncode == 0
        and n(d, "checkpoint_skipped") == 1
    )
    record(f"damaged checkpoint ({kind})", ok, lines[0][:110] if lines else a.stderr[-200:])
# 5. torn journal line
d = f"{root}/torn"
cli(BASE + ["--out", d], "after-step:1:kill")
with open(f"{d}/journal.jsonl", "ab") as fh:
    fh.write(b'{"event": "member_tra')
a = cli(["resume", d, "--quiet"])
ok = a.returncode == 0 and all(json.loads(line) for line in open(f"{d}/journal.jsonl")) and fp(d) == REF
record("torn journal line", ok)
# 6. concurrent resume (second one while the first runs), 6 times
for i in range(6):
    d = f"{root}/c{i}"
    slow = [x if x != "task.step_seconds=0.05" else "task.step_seconds=1.5" for x in BASE]
    cli(slow + ["--out", d], "after-step:0:kill")
    env = {k: v for k, v in os.environ.items() if k != "PBTNAS_FAULT"}
    first = subprocess.Popen([PY, "-m", "pbtnas", "resume", d, "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)

    def holder(d=d):
        try:
            return json.loads(open(f"{d}/.pbtnas.lock").read() or "{}").get("pid")
        except (OSError, ValueError):
            return None

    while holder() != first.pid and first.poll() is None:  # the first resume holds the lock now
        time.sleep(0.05)
    second = cli(["resume", d, "--quiet"])
    first.wait()
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    ok = (
        second.returncode == 2
        and len(lines) == 1
        and f"PID {first.pid} " in lines[0]
        and first.returncode == 0
        and RunStore(d).read_summary()["finished"]
        and n(d, "run_resumed") == 1
    )
    record("concurrent resume", ok, lines[0][:100] if lines else "")
print()
kinds = {}
for kind, held, _ in rows:
    k = kind.split(" (")[0]
    t = kinds.setdefault(k, [0, 0])
    t[0] += 1
    t[1] += held
for k, (tried, held) in kinds.items():
    print(f"| {k} | {tried} | {held} | {tried - held} |")
