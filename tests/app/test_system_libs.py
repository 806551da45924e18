"""The GUI says which packages to install when Qt's X11 plugin lacks system libraries, instead of
Qt's abort with a list of plugins (the libxcb-icccm4 / libxcb-keysyms1 that bare images lack)."""

import os
import subprocess
import sys

import pytest

from app.system_libs import debian_package, display_problem, missing_libraries, not_found, uses_x11, xcb_plugin_files

LDD = """\tlinux-vdso.so.1 (0x00007ffd5d7f2000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f3c1c200000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f3c1be00000)
"""


def test_ldd_output_names_each_missing_library_once():
    assert not_found(LDD) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert not_found("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n") == []


@pytest.mark.parametrize("soname, package", [
    ("libxcb-icccm.so.4", "libxcb-icccm4"), ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"), ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"), ("libGL.so.1", "libgl1"), ("libEGL.so.1", "libegl1"),
])
def test_debian_package_names(soname, package):
    assert debian_package(soname) == package


def test_only_an_x11_window_is_checked():
    assert uses_x11({"QT_QPA_PLATFORM": "xcb"}) == sys.platform.startswith("linux")
    assert not uses_x11({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"})
    assert not uses_x11({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"})
    assert uses_x11({"DISPLAY": ":0"}) == sys.platform.startswith("linux")
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 libraries are a Linux matter")
def test_the_gui_names_the_packages_to_install_and_exits(tmp_path):
    missing = missing_libraries(xcb_plugin_files())
    if not missing:
        pytest.skip("this machine has every library Qt's X11 plugin needs")
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", DISPLAY=":97", SARLANG_LOG_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "app.main"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 1, out.stderr
    line = [ln for ln in out.stderr.splitlines() if "cannot open its window" in ln]
    assert len(line) == 1 and "apt-get install " + " ".join(debian_package(s) for s in missing) in line[0]
    assert "Could not load the Qt platform plugin" not in out.stderr
