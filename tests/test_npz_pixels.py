"""npz pixels: values in [0, 1] are used as they are, integers 0..255 are divided by 255, and any
other range (scikit-learn digits stored as floats 0..16, negative values, more than 255) is one
``error:`` line naming the range found and ``task.pixel_max``, the option that states it."""

import numpy as np
import pytest

from pbtnas.cli import main
from pbtnas.errors import DataError
from pbtnas.tasks import build_task
from pbtnas.tasks.classification import load_dataset
from pbtnas.tasks.data.images import load_images
from pbtnas.tasks.data.npz import read_npz_images


def _digits(tmp_path, scale=1.0, dtype=np.float64, name="digits.npz"):
    from sklearn.datasets import load_digits

    data = load_digits()
    path = tmp_path / name
    np.savez(path, X=(data.images[:200] * scale).astype(dtype), y=data.target[:200])
    return path, data.images[:200] / 16.0


def test_values_0_to_16_are_refused_naming_the_range_and_the_option(tmp_path, capsys):
    path, _ = _digits(tmp_path)
    with pytest.raises(DataError, match=r"X holds values from 0 to 16 \(stored as float64\).*task\.pixel_max=16"):
        read_npz_images(str(path))
    out = tmp_path / "run"
    argv = ["run", "classification-digits", "--population", "4", "--steps", "1", "--backend", "inprocess", "--quiet"]
    code = main([*argv, "--set", "task.dataset=npz", "--set", f"task.data_path={path}", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and "task.pixel_max=16" in err[0], err
    assert "Traceback" not in "".join(err) and not out.exists()


def test_pixel_max_states_the_range_for_classification_and_gan(tmp_path):
    path, expected = _digits(tmp_path)
    task = build_task({"name": "classification", "dataset": "npz", "data_path": str(path), "pixel_max": 16})
    x, _, _ = load_dataset(task.options)
    np.testing.assert_allclose(x[:, 0], expected.astype(np.float32), rtol=1e-6)
    gan = build_task({"name": "gan", "dataset": "npz", "data_path": str(path), "pixel_max": 16})
    assert (gan.channels, gan.resolution) == (1, 8)
    images = load_images("npz", "train", data_path=str(path), pixel_max=16).images
    assert images.dtype == np.uint8 and images.max() == 255  # white is white, not 16/255 of it
    with pytest.raises(DataError, match=r"outside \[0, task.pixel_max=10\]"):
        read_npz_images(str(path), pixel_max=10)
    with pytest.raises(DataError, match="task.pixel_max"):
        build_task({"name": "gan", "dataset": "npz", "data_path": str(path)})


@pytest.mark.parametrize(
    "scale, dtype, words",
    [
        (-1.0, np.float32, "from -16 to 0"),  # negative
        (64.0, np.int32, "from 0 to 1024"),  # integers above 255
        (255.0 / 16 / 2, np.float32, "task.pixel_max=127.5"),  # floats 0..127.5: not 8-bit
    ],
)
def test_other_ranges_are_refused(tmp_path, scale, dtype, words):
    path, _ = _digits(tmp_path, scale, dtype)
    with pytest.raises(DataError, match="X holds values") as err:
        read_npz_images(str(path))
    assert words in str(err.value)


@pytest.mark.parametrize(
    "scale, dtype",
    [(1 / 16, np.float32), (255 / 16, np.uint8), (1 / 16, np.float64)],
)
def test_unit_range_and_8_bit_integers_are_read_as_before(tmp_path, scale, dtype):
    path, _ = _digits(tmp_path, scale, dtype)
    x, _ = read_npz_images(str(path))
    raw = np.load(path)["X"].astype(np.float32)
    want = raw / 255.0 if raw.max() > 1 else raw
    assert x.dtype == np.float32 and np.array_equal(x[:, 0], want)


def test_whole_number_floats_reaching_255_are_8_bit(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(10, 8, 8)).astype(np.float32)
    x[0, 0, 0] = 255
    np.savez(tmp_path / "f.npz", X=x, y=np.arange(10) % 2)
    got, _ = read_npz_images(str(tmp_path / "f.npz"))
    assert np.array_equal(got[:, 0], x / 255.0)
