"""Where the files the app needs at run time are: the sample scene and the style sheet.

They live in the repository's top-level ``resources/`` folder, which the wheel installs as the
package ``sarlang_resources`` (see ``[tool.setuptools]`` in pyproject.toml); the frozen build
copies it under the same name. A source checkout run without installing (``PYTHONPATH=.``)
falls back to the folder beside this package.
"""

from __future__ import annotations

import logging
import runpy
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = "sarlang_resources"
SAMPLE_SCENE = "sample_scene.tif"
STYLE_SHEET = "style.qss"
ICON = "sarlang.png"          # scripts/make_icon.py draws it (and sarlang.ico for Windows)


def resource_dir() -> Path:
    """The folder holding the run-time resources."""
    try:
        files = resources.files(PACKAGE)
    except ModuleNotFoundError:
        # a source checkout run uninstalled (resources/ beside sarlang_core/), or a frozen build
        # whose sarlang_resources folder is not importable for some reason
        here = Path(__file__).resolve().parents[1]
        folder = next((f for f in (here / "resources", here / PACKAGE) if f.is_dir()), here / "resources")
        log.debug("%s is not installed; using %s", PACKAGE, folder)
        return folder
    # an installed (unzipped) package or an editable install: a real folder on disk
    return Path(str(files))


def sample_scene_path() -> Path:
    """The bundled sample scene; rebuilt by its script when missing (a source checkout without it)."""
    path = resource_dir() / SAMPLE_SCENE
    script = Path(__file__).resolve().parents[1] / "scripts" / "make_sample_scene.py"
    if not path.exists() and script.is_file():
        log.warning("%s is missing; rebuilding it with %s", path, script)
        # not run as __main__: the script would take its output path from this process's argv
        runpy.run_path(str(script), run_name="make_sample_scene")["make"](path)
    return path


def style_sheet_path() -> Path:
    """The application's Qt style sheet."""
    return resource_dir() / STYLE_SHEET


def icon_path() -> Path:
    """The application icon (256 px PNG): the window, the desktop entry and the installers use it."""
    return resource_dir() / ICON
