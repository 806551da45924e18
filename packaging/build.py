"""Build the field-office installers: freeze, smoke-test the built programs, archive, print sizes.

    .venv/bin/python packaging/build.py                    # both variants
    .venv/bin/python packaging/build.py --variant field    # one
    .venv/bin/python packaging/build.py --no-smoke         # skip the smoke tests (not for a release)

full  is frozen from the interpreter running this script (a venv with torch, `pip install -e
      ".[build]"` plus onnxruntime-gpu).
field is frozen from --field-venv (default .venv-field), made here when missing: the
      packages of packaging/field-requirements.txt, then the project with --no-deps; torch must
      not be importable there.
Outputs: dist/<variant>/sarlang-studio/ (the folder), dist/<archive>.tar.gz (the installer),
build/smoke/ (smoke results and screenshots), dist/sizes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import platforms  # noqa: E402  (packaging/platforms.py)
import variants  # noqa: E402  (packaging/variants.py)


def say(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def version() -> str:
    import re

    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    m = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    if not m:
        raise SystemExit("pyproject.toml has no version")
    return m.group(1)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def has_torch(python: Path) -> bool:
    code = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('torch') else 1)"
    return subprocess.run([str(python), "-c", code]).returncode == 0


def make_field_venv(venv: Path) -> Path:
    """The field build's venv: no torch. Made once; reused while it exists."""
    python = venv_python(venv)
    if not python.exists():
        say(f"making the field venv {venv} (no torch)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run(pip + ["-r", str(variants.FIELD_REQUIREMENTS), "pyinstaller>=6.10"], check=True)
        subprocess.run(pip + ["--no-deps", "-e", str(ROOT)], check=True)
    if has_torch(python):
        raise SystemExit(f"{venv} can import torch: the field variant must be built without it; remove the venv")
    return python


def freeze(variant: str, python: Path) -> Path:
    say(f"freezing the {variant} variant with {python}")
    env = dict(os.environ, **{variants.ENV: variant})
    t0 = time.monotonic()
    subprocess.run([str(python), "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                    "--distpath", str(ROOT / "dist" / variant), "--workpath", str(ROOT / "build" / variant),
                    str(ROOT / "pyinstaller.spec")], check=True, env=env, cwd=str(ROOT))
    say(f"{variant} frozen in {time.monotonic() - t0:.0f} s")
    folder = ROOT / "dist" / variant / "sarlang-studio"
    if variant == "field":
        strip_symbols(folder)
    return folder


STRIPPED = ("libllvmlite.so",)   # unstripped in its wheel; safe to strip (auditwheel's .libs are not)


def strip_symbols(folder: Path) -> None:
    tool = shutil.which("strip")
    if tool is None:
        say("no strip tool (binutils): the field folder keeps its symbol tables")
        return
    for name in STRIPPED:
        for path in folder.rglob(name):
            subprocess.run([tool, "--strip-unneeded", str(path)], check=True)


def tiny_model(work: Path, python: Path) -> Optional[Path]:
    """A ~3 MB random Qwen2.5-VL for the smoke tests (needs torch: built with the full venv)."""
    folder = work / "tinyq"
    if (folder / "config.json").is_file():
        return folder
    if not has_torch(python):
        return None
    code = f"from sarlang_core.vlm.tiny import build_tiny_qwen2_5_vl; build_tiny_qwen2_5_vl({str(folder)!r})"
    subprocess.run([str(python), "-c", code], check=True, cwd=str(ROOT))
    return folder


def smoke(variant: str, folder: Path, work: Path, tiny: Optional[Path]) -> bool:
    cmd = [sys.executable, str(HERE / "smoke.py"), str(folder), "--variant", variant, "--work", str(work)]
    if tiny is not None:
        cmd += ["--tiny", str(tiny)]
    return subprocess.run(cmd).returncode == 0


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


def mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def print_sizes(sizes: Dict[str, Dict[str, int]]) -> None:
    say("sizes (MB = 10^6 bytes):")
    for variant, s in sizes.items():
        say(f"  {variant:<6} folder {mb(s['folder_bytes']):>9}   archive {mb(s['archive_bytes']):>9}")
    field = sizes.get("field")
    if field and field["folder_bytes"] > 700e6:
        say(f"  note: the field folder is over the 700 MB goal ({mb(field['folder_bytes'])})")


def build(chosen: List[str], args) -> int:
    work = ROOT / "build" / "smoke"
    work.mkdir(parents=True, exist_ok=True)
    maker = platforms.installer_module()
    pythons = {"full": Path(sys.executable), "field": None}
    tiny = None if args.no_smoke else (args.tiny or tiny_model(work, pythons["full"]))
    sizes, failed = {}, []
    for variant in chosen:   # full first: the field smoke asks the ONNX export the full one made
        python = pythons[variant] or make_field_venv(args.field_venv)
        folder = freeze(variant, python) if not args.skip_freeze else ROOT / "dist" / variant / "sarlang-studio"
        if not args.no_smoke and not smoke(variant, folder, work, tiny):
            failed.append(variant)
        archive = maker.make_installer(folder, version(), variant, ROOT / "dist")
        say(f"installer: {archive}")
        sizes[variant] = {"folder_bytes": folder_bytes(folder), "archive_bytes": archive.stat().st_size}
    (ROOT / "dist" / "sizes.json").write_text(json.dumps(sizes, indent=1))
    print_sizes(sizes)
    if failed:
        say(f"smoke tests FAILED for: {', '.join(failed)} (details above and in build/smoke/)")
        return 1
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Freeze, smoke-test and archive SARLANG Studio.")
    p.add_argument("--variant", choices=(*variants.VARIANTS, "both"), default="both")
    p.add_argument("--field-venv", type=Path, default=ROOT / ".venv-field", help="venv without torch (made if missing)")
    p.add_argument("--tiny", type=Path, help="tiny model folder for the smoke tests (default: built)")
    p.add_argument("--no-smoke", action="store_true", help="skip the smoke tests")
    p.add_argument("--skip-freeze", action="store_true", help="reuse dist/<variant>/ (smoke and archive only)")
    args = p.parse_args(argv)
    chosen = list(variants.VARIANTS) if args.variant == "both" else [args.variant]
    if "full" in chosen and not has_torch(Path(sys.executable)):
        raise SystemExit("the full variant is frozen from this interpreter, which has no torch: "
                         "run packaging/build.py with the project's .venv/bin/python")
    return build(chosen, args)


if __name__ == "__main__":
    sys.exit(main())
