"""Storage locations for member states on Ray (folders, fsspec URLs) and the Ray backend's slot
arithmetic (fractional GPUs, node by node); no running Ray needed."""

import pytest

from pbtnas.backends.transfer import FolderStorage, FsspecStorage, check_writable, open_storage
from pbtnas.errors import PbtnasError


@pytest.mark.parametrize("kind", ["folder", "file-url", "memory-url"])
def test_put_get_delete(tmp_path, kind):
    url = {"folder": str(tmp_path / "s"), "file-url": f"file://{tmp_path}/s", "memory-url": "memory://pbtnas-test"}[kind]
    storage = open_storage(url)
    assert isinstance(storage, FolderStorage if kind == "folder" else FsspecStorage)
    storage.put("run-1/in/a.pt", b"abc")
    assert storage.get("run-1/in/a.pt") == b"abc"
    storage.put("run-1/in/a.pt", b"xyz")  # overwrite whole
    assert storage.get("run-1/in/a.pt") == b"xyz"
    storage.delete("run-1/in/a.pt")
    storage.delete("run-1/in/a.pt")  # deleting twice is fine
    with pytest.raises((FileNotFoundError, OSError)):
        storage.get("run-1/in/a.pt")
    storage.put("run-1/out/b.pt", b"1")
    storage.delete_prefix("run-1")
    with pytest.raises((FileNotFoundError, OSError)):
        storage.get("run-1/out/b.pt")


def test_writable_check_names_the_location(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PbtnasError, match="is not writable"):
        check_writable(open_storage(str(blocker / "sub")))
    key = check_writable(open_storage(str(tmp_path / "ok")))
    assert (tmp_path / "ok" / key).is_file()


def test_folder_writes_leave_no_temporary_files(tmp_path):
    storage = open_storage(str(tmp_path))
    storage.put("a/b.pt", b"data")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.pt"]


class _FakeRay:
    """Just enough of the ray module for the resource arithmetic."""

    def __init__(self, nodes):
        self._nodes = nodes

    def nodes(self):
        return [{"Alive": True, "Resources": n} for n in self._nodes]

    def cluster_resources(self):
        return {}


def _slots(nodes, cpus, gpus, max_workers=0):
    from pbtnas.backends.ray_backend import RayBackend

    backend = object.__new__(RayBackend)
    backend.ray, backend.cpus, backend.gpus = _FakeRay(nodes), cpus, gpus
    return backend._check_resources(max_workers)


def test_slots_are_counted_node_by_node_with_fractional_gpus():
    two_gpu_nodes = [{"CPU": 8.0, "GPU": 1.0}, {"CPU": 8.0, "GPU": 1.0}]
    assert _slots(two_gpu_nodes, 1.0, 0.5) == 4  # two members per GPU
    assert _slots(two_gpu_nodes, 4.0, 0.5) == 4
    assert _slots(two_gpu_nodes, 6.0, 0.5) == 2  # CPUs bind first
    assert _slots(two_gpu_nodes, 1.0, 0.5, max_workers=3) == 3
    assert _slots([{"CPU": 2.0}], 0.125, 0.0) == 16
    with pytest.raises(PbtnasError, match="no single Ray node"):
        _slots(two_gpu_nodes, 1.0, 2.0)  # 2 GPUs in the cluster, but not on one node
    with pytest.raises(PbtnasError, match="0 GPUs"):
        _slots([{"CPU": 2.0}], 1.0, 0.5)
