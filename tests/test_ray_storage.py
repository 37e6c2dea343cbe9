"""Storage locations for member states on Ray (folders and fsspec URLs); no Ray needed."""

import pytest

from pbtnas.errors import PbtnasError
from pbtnas.storage import FolderStorage, FsspecStorage, check_writable, open_storage


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
