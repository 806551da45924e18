"""How the GUI starts `sarlang-cli` as a separate process (benchmark runs go out of process so a
crash or an out-of-memory never takes the window down): the same interpreter from a source or
pip install, the `sarlang-cli` program beside the GUI in the frozen field-office build."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List


def cli_command() -> List[str]:
    """The argument list that runs `sarlang-cli`; append the subcommand and its arguments."""
    if getattr(sys, "frozen", False):
        name = "sarlang-cli.exe" if os.name == "nt" else "sarlang-cli"
        return [str(Path(sys.executable).with_name(name))]
    return [sys.executable, "-m", "sarlang_core.cli"]
