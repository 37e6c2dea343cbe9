"""Open the report in a real headless browser (Debian's chromium): the page must render without
script errors and every image must load (``naturalWidth > 0``).

The check injects a tiny script into a copy of the page that, on ``load``, writes the number of
images, the broken ones and any errors into the DOM, which ``--dump-dom`` then prints.
"""

import json
import re
import shutil
import subprocess

import pytest
from run_helpers import RL_TINY

from pbtnas.analysis.report import build_report
from pbtnas.engine.runner import Runner

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message || e.type)); }, true);
window.addEventListener('load', function () {
  var imgs = document.images, broken = [];
  for (var i = 0; i < imgs.length; i++) {
    if (!(imgs[i].complete && imgs[i].naturalWidth > 0)) broken.push(imgs[i].getAttribute('src'));
  }
  var p = document.createElement('pre'); p.id = 'pbtnas-check';
  p.textContent = JSON.stringify({images: imgs.length, broken: broken, errors: window.__errors,
                                  title: document.title, h2: document.querySelectorAll('h2').length});
  document.body.appendChild(p);
});
</script>"""


def render_in_chromium(index, tmp_path) -> dict:
    """Load ``index`` (with the probe injected) in headless chromium; return the probe's result."""
    page = index.read_text()
    probe = index.with_name("_browser_check.html")
    probe.write_text(page.replace("<head>", "<head>" + PROBE, 1))
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    probe.unlink()
    found = re.search(r'<pre id="pbtnas-check">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"chromium printed no probe result (rc {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from conftest import TINY_TASK

    from pbtnas.config import config_from_dict

    root = tmp_path_factory.mktemp("browser") / "run"
    config = config_from_dict({"task": dict(TINY_TASK), "population": 4, "steps": 3, "seed": 2, "backend": "inprocess"})
    Runner(config, root, progress=False).start().run()
    return build_report(root)


def test_report_renders_in_chromium_with_every_image(report, tmp_path):
    result = render_in_chromium(report, tmp_path)
    assert result["errors"] == []
    assert result["broken"] == []
    assert result["images"] == 6  # fitness, architecture, lineage, inheritance, options, metrics
    assert result["title"].startswith("pbtnas report") and result["h2"] >= 6


def test_the_browser_check_catches_a_broken_image(report, tmp_path):
    page = tmp_path / "page"
    shutil.copytree(report.parent, page)
    (page / "lineage.png").unlink()
    result = render_in_chromium(page / "index.html", tmp_path)
    assert result["broken"] == ["lineage.png"]


@pytest.fixture(scope="module")
def rl_report(tmp_path_factory):
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")  # the video needs a headless renderer
    pytest.importorskip("dm_control")
    from pbtnas.config import config_from_dict

    task = {"name": "rl", **RL_TINY, "episode_frames": 80, "buffer_capacity": 600, "eval_episodes": 3, "final_eval_episodes": 2}
    root = tmp_path_factory.mktemp("browser-rl") / "run"
    config = config_from_dict({"task": task, "population": 4, "steps": 2, "seed": 1, "backend": "inprocess"})
    Runner(config, root, progress=False).start().run()
    return build_report(root)


def test_rl_report_with_return_curves_and_agent_video_renders(rl_report, tmp_path):
    page = rl_report.read_text()
    if "episode.gif" not in page:
        pytest.skip("no OpenGL renderer here: " + re.search(r"no video: [^<]*", page).group(0))
    result = render_in_chromium(rl_report, tmp_path)
    assert result["errors"] == [] and result["broken"] == []
    # fitness, architecture, lineage, inheritance, options, returns against frames, metrics, the agent's video
    assert result["images"] == 8
    shapes = render_in_chromium_sizes(rl_report, tmp_path)
    assert shapes["episode.gif"] == [128, 128] and shapes["returns.png"][0] > 600


SIZES = """<script>
window.addEventListener('load', function () {
  var out = {};
  for (var i = 0; i < document.images.length; i++) {
    var im = document.images[i]; out[im.getAttribute('src')] = [im.naturalWidth, im.naturalHeight];
  }
  var p = document.createElement('pre'); p.id = 'pbtnas-sizes'; p.textContent = JSON.stringify(out);
  document.body.appendChild(p);
});
</script>"""


def render_in_chromium_sizes(index, tmp_path) -> dict:
    """The natural size of every image of the page as chromium decoded it."""
    probe = index.with_name("_browser_sizes.html")
    probe.write_text(index.read_text().replace("<head>", "<head>" + SIZES, 1))
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile-sizes'}", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    probe.unlink()
    found = re.search(r'<pre id="pbtnas-sizes">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"chromium printed no sizes (rc {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
