"""`sarlang-cli preprocess` when writing fails or the run is stopped: a non-zero exit with one
error line, nothing at the output path, no temporary file left, and the next run works.

The full disk is made two ways: a 2 MiB tmpfs where the machine allows mounting one (root with
CAP_SYS_ADMIN; skipped otherwise), and always a file-size limit (RLIMIT_FSIZE, with SIGXFSZ
ignored, so writes past it fail with EFBIG) -- which needs no privileges, so CI always runs it.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from sarlang_core import synthetic as syn

CLI = [sys.executable, "-m", "sarlang_core.cli"]


def _env(tmp_path):
    return dict(os.environ, SARLANG_CACHE_DIR=str(tmp_path / "cache"), PYTHONDONTWRITEBYTECODE="1")


def _limit_file_size(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return apply


def _cli(tmp_path, *args, limit=None):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300, env=_env(tmp_path),
                          preexec_fn=_limit_file_size(limit) if limit else None)


@pytest.fixture(scope="module")
def noisy_scene(tmp_path_factory):
    """1200 x 1200 float32 noise: its 8-bit export (~1.4 MB) hardly compresses."""
    folder = tmp_path_factory.mktemp("faults")
    rng = np.random.default_rng(3)
    data = (rng.random((1, 1200, 1200), dtype=np.float32) * 100 + 1).astype(np.float32)
    return syn.write_scene(folder / "in.tif", data)


def _assert_failed_cleanly(out, res):
    assert res.returncode == 1, (res.stdout, res.stderr)
    ours = res.stderr.strip().splitlines()   # libtiff's own "_tiffWriteProc: ..." lines are dropped
    assert len(ours) == 1 and ours[0].startswith(f"sarlang-cli: error: {out}:"), res.stderr
    assert ".sarlang-tmp-" not in ours[0]
    assert "Traceback" not in res.stderr
    assert list(out.parent.iterdir()) == [], "nothing may be left at the output path or beside it"


# limits that make the write fail while writing blocks, while flushing on close, and while
# building overviews (the 8-bit base is ~1.36 MB, its overviews ~0.47 MB more)
@pytest.mark.parametrize("limit, extra", [
    (300_000, []), (1_000_000, ["--no-overviews"]), (1_358_000, ["--no-overviews"]), (1_600_000, []),
])
def test_file_size_limit_fails_cleanly_and_the_next_run_writes(noisy_scene, tmp_path, limit, extra):
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "o.tif"
    res = _cli(tmp_path, "preprocess", noisy_scene, out, "--filter", "none", *extra, limit=limit)
    _assert_failed_cleanly(out, res)
    again = _cli(tmp_path, "preprocess", noisy_scene, out, "--filter", "none", *extra)
    assert again.returncode == 0, again.stderr
    with rasterio.open(out) as ds:
        assert ds.read(1).shape == (1200, 1200)


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a 2 MiB tmpfs needs root; the RLIMIT_FSIZE tests cover a failed write")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"this machine does not allow mounting a tmpfs ({res.stderr.strip()}); "
                    "the RLIMIT_FSIZE tests cover a failed write")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.parametrize("extra", [[], ["--no-overviews"]])
def test_full_disk_fails_cleanly(tmp_path, small_tmpfs, extra):
    """A 1500 x 1500 noise export (~2.3 MB) on a 2 MiB disk: the segfault and the silently
    truncated file of before."""
    rng = np.random.default_rng(4)
    src = syn.write_scene(tmp_path / "in.tif", (rng.random((1, 1500, 1500), dtype=np.float32) * 100 + 1))
    out = small_tmpfs / "o.tif"
    res = _cli(tmp_path, "preprocess", src, out, "--filter", "none", *extra)
    _assert_failed_cleanly(out, res)
    assert "full" in res.stderr.splitlines()[-1]


@pytest.fixture(scope="module")
def slow_scene(tmp_path_factory):
    """Big enough that the write phase lasts about a second or more."""
    folder = tmp_path_factory.mktemp("slow")
    data = np.random.default_rng(5).random((1, 3000, 3000), dtype=np.float32) * 100 + 1
    return syn.write_scene(folder / "big.tif", data)


def _start_and_wait_for_temp(tmp_path, src, folder):
    proc = subprocess.Popen([*CLI, "preprocess", str(src), str(folder / "o.tif"), "--filter", "refined-lee",
                             "--snap-exact", "--no-db", "--stretch", "none", "--compress", "deflate"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        temps = [p for p in folder.iterdir() if ".sarlang-tmp-" in p.name]
        if temps:
            return proc, temps
        time.sleep(0.005)
    proc.kill()
    pytest.fail(f"the export never showed a temporary file (exit {proc.returncode})")


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_remove_the_temporary(tmp_path, slow_scene, sig, code):
    folder = tmp_path / "out"
    folder.mkdir()
    proc, _ = _start_and_wait_for_temp(tmp_path, slow_scene, folder)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "nothing was written" in err and "Traceback" not in err
    assert list(folder.iterdir()) == []


def test_a_killed_runs_temporary_is_removed_by_the_next_run(tmp_path, slow_scene, noisy_scene):
    folder = tmp_path / "out"
    folder.mkdir()
    proc, temps = _start_and_wait_for_temp(tmp_path, slow_scene, folder)
    proc.kill()
    proc.wait(timeout=60)
    assert all(t.exists() for t in temps)   # SIGKILL cannot be handled: the temporary stays
    res = _cli(tmp_path, "preprocess", noisy_scene, folder / "other.tif", "--filter", "none")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["other.tif"]


def test_read_only_folder_names_the_output(tmp_path, noisy_scene):
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = False
    if os.geteuid() == 0:   # root ignores permission bits: use a read-only mount when allowed
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"running as root and cannot mount a read-only tmpfs ({res.stderr.strip()})")
        mounted = True
    else:
        folder.chmod(0o555)
    try:
        out = folder / "o.tif"
        res = _cli(tmp_path, "preprocess", noisy_scene, out, "--filter", "none")
        assert res.returncode == 1, res.stderr
        line = res.stderr.strip().splitlines()
        assert len(line) == 1 and line[0].startswith(f"sarlang-cli: error: {out}:"), res.stderr
        assert "sarlang-tmp" not in line[0] and "Traceback" not in res.stderr
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=False)
        else:
            folder.chmod(0o755)
    assert not Path(out).exists()


def test_overview_cache_write_failure_leaves_no_damaged_entry(tmp_path):
    """Cached overview levels whose flush on close fails were renamed into the cache as if
    complete (GDAL only logged the failure); now the build fails and the cache stays empty."""
    rng = np.random.default_rng(6)
    src = syn.write_scene(tmp_path / "plain.tif", rng.random((1, 1200, 1200), dtype=np.float32) + 1, overviews=())
    code = ("import sys\nfrom sarlang_core.io import build_overviews\nfrom sarlang_core.errors import SarlangError\n"
            "try:\n    build_overviews(sys.argv[1])\nexcept SarlangError as e:\n    print(e); sys.exit(1)\n")
    res = subprocess.run([sys.executable, "-c", code, str(src)], capture_output=True, text=True, timeout=300,
                         env=_env(tmp_path), preexec_fn=_limit_file_size(1_060_000))  # x2 level: ~1.08 MB
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert str(src) in res.stdout and "overviews" in res.stdout
    cache = tmp_path / "cache" / "overviews"
    assert list(cache.iterdir()) == []
    res = subprocess.run([sys.executable, "-c", code, str(src)], capture_output=True, text=True, timeout=300,
                         env=_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert len([p for p in cache.iterdir() if p.suffix == ".vrt"]) == 1
