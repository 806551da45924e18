"""The built wheel carries what the app needs at run time: installed on its own (no source tree
on the path), it finds and opens the sample scene and the style sheet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Runs in the installed copy, with the site machinery off (-S: no .pth files, so no editable
# install of the source tree sneaks in) and only TARGET + the dependencies on the path.
PROBE = r"""
import json
from sarlang_core.resources import sample_scene_path, style_sheet_path
from sarlang_core.io import open_scene
import sarlang_core, app.main
scene = open_scene(sample_scene_path())
print(json.dumps({
    "core": sarlang_core.__file__, "app": app.main.__file__,
    "sample": str(sample_scene_path()), "style": str(style_sheet_path()),
    "style_text": style_sheet_path().read_text(encoding="utf-8")[:200],
    "shape": [scene.count, scene.height, scene.width], "crs": str(scene.crs),
}))
"""


def _wheel(tmp_path: Path) -> Path:
    """Build from a copy of the sources, so the build leaves no build/ or egg-info in the tree."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("sarlang_core", "app", "resources"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "--no-index", "-q", "-w", str(dist), str(src)],
                         capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = dist.glob("sarlang_studio-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    return _wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_lists_the_resources(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("sarlang_resources/__init__.py", "sarlang_resources/sample_scene.tif",
                 "sarlang_resources/style.qss", "sarlang_core/resources.py", "app/main.py"):
        assert name in names, name
    assert not any(n.startswith("resources/") for n in names)   # no top-level `resources` package
    info = zipfile.ZipFile(wheel).getinfo("sarlang_resources/sample_scene.tif")
    assert info.file_size == (ROOT / "resources" / "sample_scene.tif").stat().st_size


def test_installed_wheel_opens_the_sample(wheel, tmp_path):
    target = tmp_path / "site"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                          "--target", str(target), str(wheel)], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    deps = sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(target), *dict.fromkeys(deps)])
    out = subprocess.run([sys.executable, "-S", "-c", PROBE], capture_output=True, text=True,
                         timeout=300, cwd=elsewhere, env=env)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("core", "app", "sample", "style"):
        assert Path(got[key]).is_relative_to(target), (key, got[key])   # not the source tree
    assert Path(got["sample"]) == target / "sarlang_resources" / "sample_scene.tif"
    assert got["style_text"] == (ROOT / "resources" / "style.qss").read_text(encoding="utf-8")[:200]
    assert got["shape"] == [2, 1024, 1024]
    assert got["crs"] == "EPSG:32631"


def test_a_missing_sample_is_rebuilt_where_the_locator_looks(tmp_path, monkeypatch):
    """A source checkout without the sample rebuilds it with scripts/make_sample_scene.py, into
    the resources folder (the script once took its output path from the app's own argv)."""
    from sarlang_core import resources

    monkeypatch.setattr(resources, "resource_dir", lambda: tmp_path)
    monkeypatch.setattr(sys, "argv", ["sarlang", str(tmp_path / "scene_the_user_asked_for.tif")])
    path = resources.sample_scene_path()
    assert path == tmp_path / "sample_scene.tif"
    assert path.read_bytes() == (ROOT / "resources" / "sample_scene.tif").read_bytes()   # deterministic
    assert not (tmp_path / "scene_the_user_asked_for.tif").exists()


def test_the_source_checkout_finds_its_resources():
    from sarlang_core.resources import sample_scene_path, style_sheet_path

    assert sample_scene_path().is_file() and sample_scene_path().name == "sample_scene.tif"
    assert style_sheet_path().read_text(encoding="utf-8") == (ROOT / "resources" / "style.qss").read_text(
        encoding="utf-8")
