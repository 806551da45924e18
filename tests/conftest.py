"""Make tests/support importable from every test folder (shared servers and fixtures), and share
the session's tiny models (tests/support/tiny_models.py) with every test folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.tiny_models import (  # noqa: E402,F401
    tiny_llava,
    tiny_lora,
    tiny_qwen,
    toy_json,
    trainable_qwen,
    trained_run,
)
