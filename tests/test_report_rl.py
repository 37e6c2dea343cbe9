"""What an RL user expects from a run and its report: each evaluation episode's return with the
spread, frames/s and updates/s in the journal and the loggers, the return against environment
frames, and a short video of the delivered agent (or the reason there is none)."""

import os

import pytest

# dm_control picks its renderer once per process; the video needs a headless one
os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("dm_control")

from run_helpers import RL_TINY  # noqa: E402

from pbtnas.analysis.report import build_report  # noqa: E402
from pbtnas.config import config_from_dict  # noqa: E402
from pbtnas.engine.runner import Runner  # noqa: E402
from pbtnas.errors import PbtnasError  # noqa: E402
from pbtnas.rundir.store import RunStore  # noqa: E402

TINY_RL = {"name": "rl", **RL_TINY, "episode_frames": 80, "buffer_capacity": 600, "eval_episodes": 3, "final_eval_episodes": 2, "lr": 1e-3}


def rendering_works() -> bool:
    try:
        from pbtnas.tasks.rl.envs import check_renderer, dm_suite

        suite = dm_suite(True)
        check_renderer()
        suite.load("cartpole", "balance").physics.render(8, 8)
        return True
    except Exception:  # noqa: BLE001 - any GL failure means "no renderer here"
        return False


@pytest.fixture(scope="module")
def rl_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rl-report") / "run"
    config = config_from_dict({"task": dict(TINY_RL), "population": 4, "steps": 2, "seed": 1, "backend": "inprocess"})
    Runner(config, root, progress=False).start().run()
    return root


def test_journal_holds_every_episode_return_spread_and_speeds(rl_run):
    trained = list(RunStore(rl_run).iter_events("member_trained"))
    assert len(trained) == 8
    for event in trained:
        m = event["metrics"]
        assert len(m["eval_returns"]) == 3
        assert event["fitness"] == pytest.approx(sum(m["eval_returns"]) / 3)
        assert m["eval_return_min"] <= event["fitness"] <= m["eval_return_max"] and m["eval_return_std"] >= 0
        assert m["fps"] > 0 and m["updates_per_s"] > 0 and m["frames"] in (120, 240)


def test_report_plots_returns_against_frames_and_shows_the_agent(rl_run, tmp_path):
    index = build_report(rl_run, tmp_path / "rep")
    page = index.read_text()
    assert (tmp_path / "rep" / "returns.png").stat().st_size > 1000
    assert "evaluation return against environment frames" in page
    if not rendering_works():
        assert "no video:" in page and not (tmp_path / "rep" / "episode.gif").exists()
        pytest.skip("no OpenGL renderer here: the page states the reason")
    import imageio.v3 as iio

    frames = iio.imread(tmp_path / "rep" / "episode.gif")
    assert frames.ndim == 4 and frames.shape[1:] == (128, 128, 3) and 10 < frames.shape[0] <= 200
    assert frames.std() > 1  # a picture, not a blank
    assert "The agent at work" in page and "episode.gif" in page and "one deterministic evaluation episode" in page


def test_without_a_renderer_the_report_says_why(rl_run, tmp_path, monkeypatch):
    from pbtnas.tasks.rl.task import RLTask

    def no_renderer(self, *args, **kwargs):
        raise PbtnasError("pixels cannot be rendered with GLFW here: no display")

    monkeypatch.setattr(RLTask, "record_episode", no_renderer)
    page = build_report(rl_run, tmp_path / "rep").read_text()
    assert "no video: pixels cannot be rendered with GLFW here: no display" in page
    assert not (tmp_path / "rep" / "episode.gif").exists()


def test_loggers_get_speeds_spread_and_return_by_frames(rl_run, tmp_path):
    from pbtnas.engine.loggers import MetricLogger

    class Recorder(MetricLogger):
        def __init__(self, run_dir):
            super().__init__(run_dir)
            self.seen = []

        def log_scalars(self, scalars, step):
            self.seen.append((step, dict(scalars)))

    rec = Recorder(tmp_path)
    config = config_from_dict({"task": dict(TINY_RL), "population": 4, "steps": 1, "seed": 2, "backend": "inprocess"})
    Runner(config, tmp_path / "r", progress=False, observers=[rec]).start().run()
    tags = {tag for _, scalars in rec.seen for tag in scalars}
    for name in ("fps", "updates_per_s", "eval_return_std", "eval_return_min", "eval_return_max", "frames"):
        assert f"member/slot00/{name}" in tags
    by_frames = [(step, s) for step, s in rec.seen if "member/slot00/fitness_by_frames" in s]
    assert by_frames and by_frames[0][0] == 120  # x axis: environment frames
