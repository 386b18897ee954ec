import pytest

from deepfm_graph.atomic import atomic_write, write_directory_atomically


def test_atomic_write_keeps_the_previous_file_when_writing_fails(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")

    def fail_halfway(f):
        f.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, fail_halfway)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old")
    atomic_write(path, lambda f: f.write("a,b\n1,2\n"))
    assert path.read_text() == "a,b\n1,2\n"


def test_directory_write_replaces_its_own_save_and_refuses_other_directories(tmp_path):
    target = tmp_path / "model"
    write_directory_atomically(target, lambda d: (d / "model.json").write_text("1"), "model.json")
    write_directory_atomically(target, lambda d: (d / "model.json").write_text("2"), "model.json")
    assert (target / "model.json").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_text("meow")
    with pytest.raises(FileExistsError, match="refusing to replace"):
        write_directory_atomically(other, lambda d: None, "model.json")
    assert (other / "cat.jpg").read_text() == "meow"


def test_failed_directory_write_leaves_the_previous_one(tmp_path):
    target = tmp_path / "model"
    write_directory_atomically(target, lambda d: (d / "model.json").write_text("1"), "model.json")

    def crash(d):
        (d / "model.json").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_directory_atomically(target, crash, "model.json")
    assert (target / "model.json").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
