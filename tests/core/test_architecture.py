"""House rule 1: the core is headless. Importing every sarlang_core module pulls in no Qt."""

import subprocess
import sys

CHECK = r"""
import importlib, pkgutil, sys
import sarlang_core
for mod in pkgutil.walk_packages(sarlang_core.__path__, "sarlang_core."):
    importlib.import_module(mod.name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "pyqtgraph", "app", "shiboken6"))
print("BAD:" + ",".join(bad))
"""


def test_core_imports_no_qt():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("BAD:"), out.stdout
