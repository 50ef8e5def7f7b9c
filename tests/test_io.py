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
