"""Windows: one setup .exe per variant, made by Inno Setup 6 from sarlang.iss.

packaging/build.py calls :func:`make_installer` through packaging/platforms.py on Windows.
Needs ISCC.exe (Inno Setup's compiler) on PATH or in its default folder.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_ISCC = Path(r"C:\Program Files (x86)\Inno Setup 6\ISCC.exe")


def make_installer(folder: Path, version: str, variant: str, out_dir: Path) -> Path:
    iscc = shutil.which("ISCC") or (str(DEFAULT_ISCC) if DEFAULT_ISCC.exists() else None)
    if iscc is None:
        raise SystemExit("Inno Setup 6 (ISCC.exe) is not installed: get it from jrsoftware.org, then build again")
    subprocess.run([iscc, f"/DAppVersion={version}", f"/DVariant={variant}", f"/DSourceDir={folder}",
                    f"/DOutputDir={out_dir}", str(HERE / "sarlang.iss")], check=True)
    return out_dir / f"sarlang-studio-{version}-{variant}-windows-x86_64.exe"
