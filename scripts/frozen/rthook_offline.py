"""Runtime hook of the field-office build: nothing may reach for a model hub. Models load from
local folders only (the code already passes local_files_only=True); these make any library
that would still try fail fast instead of hanging on a closed network."""
import os

for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(name, "1")
