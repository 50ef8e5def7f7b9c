"""Atomic writes: a write killed halfway leaves the old file whole, and what it left beside it
goes at the next write of the same file, and only that."""
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from genlib import io

KILLED_WRITE = textwrap.dedent("""
    import os, signal, sys
    from genlib import io

    with io.atomic_path(sys.argv[1]) as tmp:
        tmp.write_bytes(b"half of the new")
        os.kill(os.getpid(), signal.SIGKILL)
""")


def killed_write(target) -> None:
    run = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(target)], capture_output=True)
    assert run.returncode == -signal.SIGKILL, run.stderr


def test_a_killed_write_leaves_the_old_file_and_its_leftover_goes_next_time(tmp_path):
    target = tmp_path / "eval.json"
    target.write_text("old")
    killed_write(target)
    first = list(tmp_path.glob(".eval.json.*.tmp"))
    assert len(first) == 1 and target.read_text() == "old"  # the kill left one, the target is whole
    killed_write(target)
    left = list(tmp_path.glob(".eval.json.*.tmp"))
    assert len(left) == 1 and left != first  # the second write removed the first's, then was killed too
    others = [
        tmp_path / ".eval.json.tmp",  # not what mkstemp names: no eight characters
        tmp_path / ".eval.json.abc.tmp",
        tmp_path / ".eval.json.ABCDEFGH.tmp",  # not mkstemp's alphabet
        tmp_path / ".eval.jsonx.abcdefgh.tmp",  # another target's
        tmp_path / ".train.json.abcdefgh.tmp",
        tmp_path / "eval.json.abcdefgh.tmp",  # not hidden
    ]
    for p in others:
        p.write_text("someone else's")
    (tmp_path / ".eval.json.dirdirdi.tmp").mkdir()  # a folder of that name is not a leftover
    io.write_text(target, "new")
    assert target.read_text() == "new"
    assert not any(p.exists() for p in left)
    assert all(p.read_text() == "someone else's" for p in others) and (tmp_path / ".eval.json.dirdirdi.tmp").is_dir()


def test_a_name_with_glob_characters_is_matched_literally(tmp_path):
    target = tmp_path / "fig[1]*.png"
    killed_write(target)
    (tmp_path / ".fig1x.png.abcdefgh.tmp").write_text("keep")
    io.write_bytes(target, b"png")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".fig1x.png.abcdefgh.tmp", "fig[1]*.png"]


def test_copy_file_is_atomic(tmp_path, monkeypatch):
    """The report's copies of samples.png and the analysis figures: a copy that fails halfway
    leaves the old copy whole and no temporary file."""
    source, target = tmp_path / "samples.png", tmp_path / "report" / "samples.png"
    source.write_bytes(b"new figure")
    target.parent.mkdir()
    target.write_bytes(b"old figure")

    def half(src, dst):
        open(dst, "wb").write(b"new")
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copyfile", half)
    with pytest.raises(OSError, match="disk full"):
        io.copy_file(source, target)
    assert target.read_bytes() == b"old figure" and sorted(target.parent.iterdir()) == [target]
    monkeypatch.undo()
    io.copy_file(source, target)
    assert target.read_bytes() == b"new figure"


def test_outputs_written_together_are_renamed_at_the_end_in_order(tmp_path):
    """Inside the block nothing is in place (but readable through io.latest); at its end the
    removals and renames happen in the order they were asked for; a file written twice keeps
    the second."""
    (tmp_path / "a.json").write_text("old a")
    (tmp_path / "stale.png").write_text("stale")
    with io.outputs_together():
        io.write_text(tmp_path / "a.json", "new a")
        io.remove(tmp_path / "stale.png")
        io.write_text(tmp_path / "b.json", "first b")
        io.write_text(tmp_path / "b.json", "second b")
        with io.outputs_together():  # joins the outer block
            io.write_text(tmp_path / "c.json", "c")
        with io.written_now():
            io.write_text(tmp_path / "now.json", "now")
        assert (tmp_path / "a.json").read_text() == "old a" and (tmp_path / "stale.png").exists()
        assert not (tmp_path / "b.json").exists() and not (tmp_path / "c.json").exists()
        assert (tmp_path / "now.json").read_text() == "now"
        assert io.latest(tmp_path / "a.json").read_text() == "new a" and io.latest(tmp_path / "x") == tmp_path / "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json", "c.json", "now.json"]
    assert (tmp_path / "a.json").read_text() == "new a" and (tmp_path / "b.json").read_text() == "second b"


def test_a_block_left_by_an_error_changes_nothing_and_leaves_nothing(tmp_path):
    (tmp_path / "a.json").write_text("old a")
    undone = []
    with pytest.raises(KeyboardInterrupt):
        with io.outputs_together():
            io.write_text(tmp_path / "a.json", "new a")
            io.remove(tmp_path / "a.json")
            io.on_abort(lambda: undone.append(1))
            raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"] and (tmp_path / "a.json").read_text() == "old a"
    assert undone == [1]
    io.on_abort(lambda: undone.append(2))  # outside a block: never run
    io.remove(tmp_path / "a.json")  # outside a block: at once
    assert not (tmp_path / "a.json").exists() and undone == [1]


@pytest.mark.parametrize("kind", ["errno", "torch", "numpy"])
def test_no_space_is_disk_full_naming_the_file(tmp_path, monkeypatch, kind):
    """ENOSPC as each writer reports it: an OSError with errno 28; torch's RuntimeError wrapping
    one; numpy's short write, an OSError without errno, told by the space left on the disk."""
    import errno
    import os

    from genlib.errors import DiskFull

    def failing(p):
        if kind == "errno":
            raise OSError(errno.ENOSPC, "No space left on device")
        if kind == "torch":
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError:
                raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
        raise OSError("100000 requested and 8176 written")

    class Full:
        f_bavail, f_frsize = 16, 4096

    monkeypatch.setattr(os, "statvfs", lambda folder: Full())
    (tmp_path / "x.npy").write_text("old")
    with pytest.raises(DiskFull) as err:
        io._write_with(tmp_path / "x.npy", failing)
    assert str(err.value).startswith(f"{tmp_path / 'x.npy'}: the disk is full") and f"df -h {tmp_path}" in str(err.value)
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"] and (tmp_path / "x.npy").read_text() == "old"


def test_other_write_errors_stay_what_they_are(tmp_path, monkeypatch):
    """Without an errno on a disk with room, or with another errno on a full disk, a write error
    is not taken for a full disk."""
    import errno
    import os

    def failing(p):
        raise OSError("not a space problem")

    with pytest.raises(OSError, match="not a space problem"):
        io._write_with(tmp_path / "x.npy", failing)

    class Full:
        f_bavail, f_frsize = 0, 4096

    monkeypatch.setattr(os, "statvfs", lambda folder: Full())

    def denied(p):
        raise PermissionError(errno.EACCES, "Permission denied")

    with pytest.raises(PermissionError):
        io._write_with(tmp_path / "x.npy", denied)
    assert not list(tmp_path.iterdir())


# A stage's commit as the pipeline's are made of: files replaced, a folder swapped (dvclive's
# curves), a file removed. The process SIGKILLs itself before its k-th rename, replace, unlink
# or rmdir (the journal's own included), for every k; the next block must then find the outputs
# all old or, once the journal is in place, complete them all new.
KILLED_COMMIT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from genlib import io

    root, kill_at = Path(sys.argv[1]), int(sys.argv[2])
    os.chdir(root)
    calls = [0]

    def counted(real):
        def call(*args, **kwargs):
            if calls[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            calls[0] += 1
            return real(*args, **kwargs)
        return call

    with io.outputs_together():
        io.write_text(root / "out" / "a.txt", "new a")
        io.write_text(root / "out" / "b.txt", "new b")
        staging = root / "out" / ".curves.partial"
        staging.mkdir()
        (staging / "c.tsv").write_text("new c")
        io.move(staging, root / "out" / "curves")
        io.remove(root / "out" / "stale.txt")
        io.write_text(root / "out" / "d.txt", "new d")
        for name in ("replace", "rename", "unlink", "rmdir"):
            setattr(os, name, counted(getattr(os, name)))
    print(calls[0])
""")
OLD = {"a.txt": "old a", "b.txt": "old b", "curves/c.tsv": "old c", "stale.txt": "stale", "d.txt": "old d"}
NEW = {"a.txt": "new a", "b.txt": "new b", "curves/c.tsv": "new c", "d.txt": "new d"}


def _outputs(root) -> dict[str, str]:
    """The outputs under ``root / out``, without the hidden leftovers beside them."""
    return {str(p.relative_to(root / "out")): p.read_text() for p in sorted((root / "out").rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root / "out").parts)}


def _old_outputs(root) -> None:
    shutil.rmtree(root, ignore_errors=True)
    for name, text in OLD.items():
        (root / "out" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "out" / name).write_text(text)


def _killed_commit(root, kill_at: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", KILLED_COMMIT, str(root), str(kill_at)], capture_output=True, text=True)


def test_a_sigkill_at_any_step_of_a_commit_leaves_all_old_or_completes_all_new(tmp_path, monkeypatch):
    root = tmp_path / "project"
    _old_outputs(root)
    whole = _killed_commit(root, 10**6)  # never killed: counts the steps
    assert whole.returncode == 0 and _outputs(root) == NEW, whole.stderr
    steps = int(whole.stdout)
    assert steps >= 9  # journal, 3 files, the folder's 2 renames and removal, stale.txt, the journal's removal
    seen = []
    for k in range(steps):
        _old_outputs(root)
        run = _killed_commit(root, k)
        assert run.returncode == -signal.SIGKILL, (k, run.stderr)
        journal = (root / io.JOURNAL).is_file()
        monkeypatch.chdir(root)
        with io.outputs_together():  # the next stage's block
            pass
        monkeypatch.chdir(tmp_path)
        found = _outputs(root)
        assert found == (NEW if journal else OLD), (k, found)
        seen.append(journal)
        left = sorted(p.name for p in root.rglob("*") if p.name.endswith((".tmp", ".old", ".partial")) or p.name == "commit.json")
        if not journal:  # the kill's temporary files, as after a kill inside a write: they go at the next write of each
            assert len(left) == 4 and ".curves.partial" in left, (k, left)  # the staging folder goes at the next training; the journal's temporary file is gone
            for name in ("a.txt", "b.txt", "d.txt"):
                io.write_text(root / "out" / name, "again")
            left = [p.name for p in root.rglob("*.tmp")]
        assert left == [], (k, left)
    assert seen[0] is False and all(seen[1:])  # killed before the journal was in place: nothing done


def test_a_bad_commit_journal_is_one_line(tmp_path, monkeypatch):
    from genlib.errors import DataError

    monkeypatch.chdir(tmp_path)
    (tmp_path / io.JOURNAL).parent.mkdir()
    for text in ("{not json", '[["remove", "relative/path"]]', '[["run", "/bin/sh"]]'):
        (tmp_path / io.JOURNAL).write_text(text + "\n")
        with pytest.raises(DataError, match=r"commit.json: not a commit journal genlib wrote .*remove it and run the stage again"):
            with io.outputs_together():
                pass
