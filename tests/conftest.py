"""Make tests/support importable from every test folder (shared servers and fixtures), share the
session's tiny models (tests/support/tiny_models.py) with every test folder, and run torch on one
thread.

One thread: the tiny models' ops are far too small to gain from a second OpenMP thread, and on a
busy 2-core machine a 2-thread team waits at every op for a thread the scheduler has put aside:
a tiny training step took ~2 s instead of ~20 ms. Set before torch is imported, so the test
process and every process it starts (CLI runs, GUI-started runs) inherit it; a value already in
the environment is kept.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.tiny_models import (  # noqa: E402,F401
    tiny_llava,
    tiny_lora,
    tiny_qwen,
    tiny_qwen_onnx,
    toy_json,
    trainable_qwen,
    trained_run,
)
