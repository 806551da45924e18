"""The house rules that imports must keep (docs/ARCHITECTURE.md):

1. the core is headless: importing every ``sarlang_core`` module pulls in no Qt;
2. ``app/`` reaches the core only through ``sarlang_core.services`` and the shared types;
3. no import cycles among the project's own modules, imports inside functions included.
"""

from __future__ import annotations

import subprocess
import sys

from support.import_graph import ROOT, app_core_violations, import_cycles, project_imports

CHECK = r"""
import importlib, pkgutil, sys
import sarlang_core
for mod in pkgutil.walk_packages(sarlang_core.__path__, "sarlang_core."):
    if mod.name.endswith("__main__"):
        continue
    importlib.import_module(mod.name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "pyqtgraph", "app", "shiboken6"))
print("BAD:" + ",".join(bad))
"""


def test_core_imports_no_qt():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("BAD:"), out.stdout


def test_core_source_names_no_qt():
    """Also imports that only run inside functions (the subprocess check cannot see those)."""
    graph = project_imports(ROOT)
    bad = [(mod, target) for mod, targets in graph.items() if mod.startswith("sarlang_core")
           for target in targets if target.split(".")[0] in ("PySide6", "pyqtgraph", "app", "shiboken6")]
    assert bad == []


def test_app_reaches_the_core_only_through_services():
    violations = app_core_violations(project_imports(ROOT))
    assert violations == [], "\n".join(f"{m} imports {t}" for m, t in violations)


def test_no_import_cycles():
    cycles = import_cycles(project_imports(ROOT))
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_a_cycle_and_a_violation(tmp_path):
    """The two checks above can fail: a planted cycle and a planted reach past the services."""
    pkg = tmp_path / "sarlang_core"
    (pkg / "evaluate").mkdir(parents=True)
    (tmp_path / "app").mkdir()
    for init in (pkg / "__init__.py", pkg / "evaluate" / "__init__.py", tmp_path / "app" / "__init__.py"):
        init.write_text("")
    (pkg / "evaluate" / "a.py").write_text("def f():\n    from .b import g\n")
    (pkg / "evaluate" / "b.py").write_text("from sarlang_core.evaluate import a\n")
    (tmp_path / "app" / "view.py").write_text("from sarlang_core.evaluate.a import f\n")
    graph = project_imports(tmp_path)
    assert import_cycles(graph) == [["sarlang_core.evaluate.a", "sarlang_core.evaluate.b"]]
    assert app_core_violations(graph) == [("app.view", "sarlang_core.evaluate.a")]
