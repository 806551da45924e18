"""packaging/linux/install.sh on a stand-in built folder (two stub programs and the icon): the
installer is what is under test here; the real build is checked by packaging/smoke.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "packaging" / "linux" / "install.sh"

pytestmark = pytest.mark.skipif(shutil.which("sh") is None or os.name == "nt", reason="a POSIX shell installer")


def _archive(tmp_path: Path, version: str) -> Path:
    """What an unpacked archive holds: install.sh beside a sarlang-studio/ folder."""
    top = tmp_path / f"archive-{version}"
    prog = top / "sarlang-studio"
    (prog / "_internal" / "sarlang_resources").mkdir(parents=True)
    for name in ("sarlang", "sarlang-cli"):
        (prog / name).write_text(f"#!/bin/sh\necho '{name} {version} · field · frozen build'\n")
        (prog / name).chmod(0o755)
    shutil.copy(ROOT / "resources" / "sarlang.png", prog / "_internal" / "sarlang_resources" / "sarlang.png")
    (prog / "_internal" / f"only-in-{version}").write_text("x")
    shutil.copy(INSTALL, top / "install.sh")
    return top


def _run(script: Path, *args: str, home: Path) -> subprocess.CompletedProcess:
    env = {"HOME": str(home), "PATH": f"{home / '.local/bin'}:/usr/bin:/bin"}
    return subprocess.run(["sh", str(script), *args], capture_output=True, text=True, env=env, timeout=60)


def _tree(root: Path) -> set:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_user_install_upgrade_and_uninstall(tmp_path):
    home = tmp_path / "home"
    (home / ".config" / "sarlang-studio").mkdir(parents=True)
    settings = home / ".config" / "sarlang-studio" / "models.json"
    settings.write_text('{"models": [{"name": "mine", "path": "/data/mine"}]}')
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "other-tool").write_text("keep")
    before = _tree(home)

    r = _run(_archive(tmp_path, "0.1.0") / "install.sh", home=home)
    assert r.returncode == 0, r.stderr
    prefix = home / ".local/share/sarlang-studio"
    bin_link = home / ".local/bin/sarlang-cli"
    assert bin_link.is_symlink() and os.readlink(bin_link) == str(prefix / "sarlang-cli")
    assert subprocess.run([str(bin_link)], capture_output=True, text=True).stdout.startswith("sarlang-cli 0.1.0")
    desktop = (home / ".local/share/applications/sarlang-studio.desktop").read_text()
    assert f'Exec="{prefix}/sarlang" %f' in desktop and "Icon=sarlang-studio" in desktop
    assert (home / ".local/share/icons/hicolor/256x256/apps/sarlang-studio.png").stat().st_size > 1000
    assert "Installed sarlang-cli 0.1.0" in r.stdout

    # over an older version: the program folder is replaced, the user's settings and models stay
    r = _run(_archive(tmp_path, "0.2.0") / "install.sh", home=home)
    assert r.returncode == 0, r.stderr
    assert "Replaced the previous version" in r.stdout
    assert (prefix / "_internal" / "only-in-0.2.0").exists() and not (prefix / "_internal" / "only-in-0.1.0").exists()
    assert settings.read_text().startswith('{"models": [{"name": "mine"')

    r = _run(prefix / "uninstall.sh", home=home)
    assert r.returncode == 0, r.stderr
    assert _tree(home) - before <= {".local/share", ".local/share/applications", ".local/share/icons",
                                    ".local/share/icons/hicolor", ".local/share/icons/hicolor/256x256",
                                    ".local/share/icons/hicolor/256x256/apps"}
    assert before <= _tree(home) and settings.exists() and (home / ".local/bin/other-tool").exists()


def test_a_file_not_ours_in_the_bin_folder_stops_the_install(tmp_path):
    home = tmp_path / "home"
    (home / ".local/bin").mkdir(parents=True)
    (home / ".local/bin/sarlang").write_text("someone else's")
    r = _run(_archive(tmp_path, "0.1.0") / "install.sh", home=home)
    assert r.returncode != 0 and "is not a link into" in r.stderr
    assert not (home / ".local/share/sarlang-studio").exists()


def _unwritable(tmp_path: Path) -> Path:
    """A folder this process cannot write in: a read-only folder, or /sys for root (which may write anywhere else)."""
    if os.geteuid() == 0:
        return Path("/sys/sarlang-studio-test")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return ro / "sarlang-studio"


def test_system_install_without_write_permission_says_so(tmp_path):
    prefix = _unwritable(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    r = _run(_archive(tmp_path, "0.1.0") / "install.sh", "--system", "--prefix", str(prefix),
             "--bindir", str(tmp_path / "bin"), "--datadir", str(tmp_path / "share"), home=home)
    assert r.returncode != 0
    assert f"cannot write to {prefix.parent}" in r.stderr and "nothing was installed" in r.stderr
    assert "sudo" in r.stderr
    assert not (tmp_path / "bin").exists() or not any((tmp_path / "bin").iterdir())


def test_uninstall_where_nothing_is_installed_is_refused(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    r = _run(_archive(tmp_path, "0.1.0") / "install.sh", "--uninstall", home=home)
    assert r.returncode != 0 and "no SARLANG Studio installation" in r.stderr
