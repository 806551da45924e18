"""Linux: one .tar.gz per variant holding the built folder and the installer.

    sarlang-studio-<version>-<variant>-linux-x86_64/
        install.sh          per-user (default) or --system; --uninstall
        INSTALL.txt         the three commands a technician needs
        sarlang-studio/     the frozen folder (sarlang, sarlang-cli, _internal/)

Everything Linux-specific about shipping lives in this folder; packaging/build.py calls
:func:`make_installer` through packaging/platforms.py.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent

INSTALL_TXT = """SARLANG Studio {version} ({variant} variant) for Linux x86-64

Install for yourself:        ./install.sh
Install for every user:      sudo ./install.sh --system
Check the install:           sarlang --self-test
Uninstall:                   ~/.local/share/sarlang-studio/uninstall.sh   (or /opt/sarlang-studio/uninstall.sh)

An install over an older version keeps your settings (~/.config/sarlang-studio) and your models.json.
"""


def archive_name(version: str, variant: str) -> str:
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64"}.get(platform.machine().lower(), "x86_64")
    return f"sarlang-studio-{version}-{variant}-linux-{arch}"


def _stage(folder: Path, stage: Path, version: str, variant: str) -> None:
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    try:   # hard links: the staging copy of a 2 GB folder costs nothing
        shutil.copytree(folder, stage / "sarlang-studio", symlinks=True, copy_function=os.link)
    except OSError:
        shutil.copytree(folder, stage / "sarlang-studio", symlinks=True, dirs_exist_ok=True)
    shutil.copy2(HERE / "install.sh", stage / "install.sh")
    (stage / "install.sh").chmod(0o755)
    (stage / "INSTALL.txt").write_text(INSTALL_TXT.format(version=version, variant=variant), encoding="utf-8")


def make_installer(folder: Path, version: str, variant: str, out_dir: Path) -> Path:
    """Write out_dir/<archive_name>.tar.gz from the built ``folder``; return its path."""
    name = archive_name(version, variant)
    stage = out_dir / name
    _stage(folder, stage, version, variant)
    target = out_dir / f"{name}.tar.gz"
    gzip = "pigz" if shutil.which("pigz") else "gzip"
    subprocess.run(["tar", "-I", gzip, "-cf", str(target), "-C", str(out_dir), name], check=True)
    shutil.rmtree(stage)
    return target
