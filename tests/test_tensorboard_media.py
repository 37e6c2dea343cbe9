"""TensorBoard (issue 21, item 9): a run killed in the middle of a step and resumed holds every
(tag, step) scalar once; GAN sample grids arrive as images; an RL agent's episode arrives as a
video (an animated GIF in an image summary, as ``add_video`` writes it), and a gymnasium
environment that renders ``rgb_array`` frames gets its episode video in the report too."""

import collections
import os
import signal
import subprocess
import sys

import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

import pbtnas  # noqa: E402
from pbtnas.cli import main  # noqa: E402

HERE = os.path.dirname(__file__)


def _events(log_dir) -> EventAccumulator:
    # keep every value and purge nothing: what is in the files, duplicates included
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0}, purge_orphaned_data=False)
    acc.Reload()
    return acc


def test_a_run_killed_mid_step_and_resumed_logs_each_scalar_once(tmp_path, no_fault_left):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, os.path.join(HERE, "tb_kill_driver.py"), str(run), "1"], env=env, capture_output=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    summary = pbtnas.resume(str(run))
    assert summary["steps_done"] == 3
    acc = _events(run / "tensorboard")
    seen = collections.Counter((tag, e.step) for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag))
    assert {key: n for key, n in seen.items() if n > 1} == {}
    assert {step for tag, step in seen if tag == "member/slot00/fitness"} == {1, 2, 3}
    assert {step for tag, step in seen if tag == "population/best_ever"} == {1, 2, 3}
    texts = collections.Counter((tag, e.step) for tag in acc.Tags()["tensors"] for e in acc.Tensors(tag))
    assert {key: n for key, n in texts.items() if n > 1} == {}
    # the config of each process, at the step it started from (the resume redid step 1)
    assert sorted(step for tag, step in texts if tag.startswith("config")) == [0, 1]


def test_gan_sample_grids_are_images_in_tensorboard(tmp_path):
    from test_gan_task import TINY

    run = tmp_path / "gan"
    pbtnas.run({"task": {"name": "gan", **TINY}, "loggers": ["tensorboard"]}, out=str(run), population=4, steps=1, backend="inprocess")
    images = _events(run / "tensorboard").Images("samples")
    assert [e.step for e in images] == [1]
    assert images[0].encoded_image_string.startswith(b"\x89PNG") and images[0].width > 8


def test_an_rl_episode_is_a_video_in_tensorboard_and_the_report(tmp_path, capsys):
    import rendered_envs  # noqa: F401 - registers DrawnPointMass-v0, as a gymnasium environment would be
    from test_rl_config_checks import TINY

    run = tmp_path / "rl"
    args = ["run", "rl-cheetah", *TINY, "--set", "task.env=gym:DrawnPointMass-v0", "--set", "loggers=tensorboard", "--out", str(run)]
    assert main(args) == 0
    acc = _events(run / "tensorboard")
    (video,) = acc.Images("episode/final")
    assert video.step == 1 and video.encoded_image_string.startswith(b"GIF89a") and (video.width, video.height) == (128, 84)
    assert main(["report", str(run)]) == 0
    assert (run / "report" / "episode.gif").stat().st_size > 0
    page = (run / "report" / "index.html").read_text()
    assert "<img src='episode.gif'" in page and "one deterministic evaluation episode" in page


@pytest.mark.parametrize("schedule", [{"mode": "async"}, {"algorithm": "bohb"}])
def test_schedules_that_commit_each_result_log_it_at_once(tmp_path, schedule):
    """Async and BOHB commit a result before they report it: the logger writes it right away
    (held until a step ended, a kill would lose results that a resume does not redo)."""
    from test_loggers import Recorder

    from pbtnas.config import config_from_dict
    from pbtnas.engine.runner import make_runner

    class Watch(Recorder):
        late = 0

        def on_member_result(self, step, member, result):
            super().on_member_result(step, member, result)
            self.late += (f"member/slot{result.slot:02d}/uid", step + 1, float(result.uid)) not in self.scalars

    data = {"task": {"name": "simulated", "step_seconds": 0}, "population": 4, "steps": 3, "seed": 2, "backend": "inprocess", "loggers": "none"}
    runner = make_runner(config_from_dict({**data, **schedule}), tmp_path / "run", progress=False)
    watch = Watch(tmp_path / "run")
    runner.observers.append(watch)
    runner.start().run()
    counted = collections.Counter((tag, step) for tag, step, _ in watch.scalars)
    assert counted and max(counted.values()) == 1
    assert watch.late == 0
    assert watch.config is not None and watch.closed
