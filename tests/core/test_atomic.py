"""Whole-or-nothing file writes: a failure before the rename keeps the old file and leaves no
temporary file behind."""

import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from sarlang_core.atomic import clean_stale_temps, create_temp, write_bytes_atomic, write_text_atomic


def test_writes_and_replaces(tmp_path):
    target = tmp_path / "sub" / "a.json"
    write_text_atomic(target, "first")
    write_text_atomic(target, "second ✓")
    assert target.read_text(encoding="utf-8") == "second ✓"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.bin"
    write_bytes_atomic(target, b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


# -- permissions: what a plain open() would give, whatever kind of output ---------------------------
@pytest.fixture(params=[(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)], ids=["umask022", "umask002", "umask077"])
def umask(request):
    mask, expected = request.param
    old = os.umask(mask)
    try:
        yield expected
    finally:
        os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_text_and_bytes_outputs_follow_the_umask(tmp_path, umask):
    # reports, metrics, run.json, verdicts, pipelines, dataset_info.json, LLM cache entries
    assert _mode(write_text_atomic(tmp_path / "report.md", "x")) == umask
    assert _mode(write_bytes_atomic(tmp_path / "d" / "info.json", b"{}")) == umask
    write_text_atomic(tmp_path / "report.md", "replaced")
    assert _mode(tmp_path / "report.md") == umask


def test_geotiff_transcript_and_geojson_follow_the_umask(tmp_path, umask):
    from sarlang_core import synthetic as syn
    from sarlang_core.io import open_scene, write_geotiff_atomic
    from sarlang_core.preprocess.pipeline import Pipeline
    from sarlang_core.services.ask import save_geojson
    from sarlang_core.services.chat import Conversation

    assert _mode(write_geotiff_atomic(tmp_path / "g.tif", np.ones((8, 8), np.float32), overviews=(2,))) == umask
    conv = Conversation(str(tmp_path / "g.tif"), Pipeline())
    assert _mode(conv.save(tmp_path / "chat.md")) == umask
    assert _mode(conv.save(tmp_path / "chat.json")) == umask
    src = syn.write_scene(tmp_path / "s.tif", np.ones((1, 16, 16), np.float32))
    with open_scene(src) as scene:
        assert _mode(save_geojson(tmp_path / "boxes.geojson", [], scene)) == umask
    assert not [p for p in tmp_path.iterdir() if ".sarlang-tmp-" in p.name]


# -- temporaries: recognisable, and those of killed runs cleaned ------------------------------------
def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_dead_runs_are_removed(tmp_path):
    tmp = create_temp(tmp_path / "out.tif")
    assert tmp.name.startswith(".out.tif.sarlang-tmp-") and f"-{os.getpid()}-" in tmp.name
    dead = tmp.name.replace(f"-{os.getpid()}-", f"-{_dead_pid()}-")
    other_host = f".out.tif.sarlang-tmp-elsewhere-{_dead_pid()}-0123abcd"
    for name in (dead, dead + ".aux.xml", other_host, "keep.tif", ".hidden"):
        (tmp_path / name).write_text("x")
    write_text_atomic(tmp_path / "b.json", "{}")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([tmp.name, other_host, "keep.tif", ".hidden", "b.json"])  # live and foreign stay
    assert clean_stale_temps(tmp_path) == []


def test_a_failed_write_in_a_read_only_folder_names_the_target(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(args[0]))

    monkeypatch.setattr(os, "open", refuse)
    from sarlang_core.errors import ExportError
    from sarlang_core.io.export import make_temp

    with pytest.raises(ExportError, match=r"out\.tif: cannot write in .*Permission denied"):
        make_temp(tmp_path / "out.tif")
