"""The LLaMA-Factory side of bench/gpu_train_compare.py: its environment and its run.

    info = setup_llamafactory(Path(".whl-lf"), Path("/tmp/lf-site"))   # what was installed, stubs
    # then, with PYTHONPATH=/tmp/lf-site:
    python bench/lf_side.py RUN.yaml TIMINGS.json     # LLaMA-Factory's training + a step timer

Only what this Python lacks, or has in a version LLaMA-Factory 0.9.5 refuses, is installed (from
local wheels, --no-deps, into a folder of its own): the project's own run keeps the machine's
transformers/peft, LLaMA-Factory gets the ones it pins.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional

# What LLaMA-Factory 0.9.5 checks at start (extras/misc.py check_dependencies) or needs to import,
# as (distribution, specifier, wheel requirement when it must be installed).
LF_NEEDS = [
    ("llamafactory", "==0.9.5", "llamafactory==0.9.5"),
    ("transformers", ">=4.55.0,<=5.6.0,!=4.57.0,!=4.52.0", "transformers==5.6.0"),
    ("datasets", ">=2.16.0,<=4.0.0", "datasets==4.0.0"),
    ("accelerate", ">=1.3.0,<=1.11.0", "accelerate==1.11.0"),
    ("peft", ">=0.18.0,<=0.18.1", "peft==0.18.1"),
    ("trl", ">=0.18.0,<=0.24.0", "trl==0.24.0"),
    ("omegaconf", ">=2.0", "omegaconf==2.3.0"),
    ("antlr4-python3-runtime", ">=4.9,<4.10", "antlr4-python3-runtime==4.9.3"),
    ("huggingface-hub", ">=1.5.0,<2.0", "huggingface-hub"),       # transformers 5.6's range
    ("tokenizers", ">=0.22.0,<=0.23.0", "tokenizers"),
    ("httpx", ">=0.23", "httpx"), ("httpcore", ">=1.0", "httpcore"), ("h11", ">=0.16", "h11"),
    ("anyio", ">=3.0", "anyio"), ("sniffio", ">=1.1", "sniffio"),
    ("dill", ">=0.3.0,<0.3.9", "dill"), ("multiprocess", "<0.70.17", "multiprocess"),
    ("xxhash", ">=0", "xxhash"), ("fsspec", ">=2023.1.0,<=2025.3.0", "fsspec"),
    ("pandas", ">=1.0", "pandas"), ("pytz", ">=2020", "pytz"), ("tzdata", ">=2022", "tzdata"),
    ("python-dateutil", ">=2.8", "python-dateutil"),
    ("requests", ">=2.32.2", "requests"), ("urllib3", ">=1.21", "urllib3"), ("idna", ">=2.5", "idna"),
    ("charset-normalizer", ">=2", "charset-normalizer"), ("certifi", ">=2017", "certifi"),
    ("pyarrow", ">=15.0.0", "pyarrow"),
]
TORCHAUDIO_STUB = '''"""Stand-in for torchaudio: LLaMA-Factory imports it at module level, calls it for audio only."""


def load(*args, **kwargs):
    raise RuntimeError("torchaudio is not installed here (audio inputs are not part of this benchmark)")


class functional:  # noqa: N801
    resample = staticmethod(load)
'''
KERNELS_STUB = 'raise ImportError("hidden for the LLaMA-Factory run: transformers 5.6 predates this kernels")\n'
def installed(dist: str) -> Optional[str]:
    import importlib.metadata as md

    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def setup_llamafactory(wheels: Path, site: Path) -> Dict[str, Any]:
    """Install into ``site`` what LLaMA-Factory needs and this Python lacks (or has in a version it refuses)."""
    from packaging.specifiers import SpecifierSet

    need = []
    for dist, spec, req in LF_NEEDS:
        have = installed(dist)
        if have is None or have not in SpecifierSet(spec, prereleases=True):
            need.append(req)
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    t0 = time.perf_counter()
    if need:
        cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheels), "--no-deps",
               "--disable-pip-version-check", "-q", "--target", str(site), *need]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"installing {need} from {wheels} failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    stubs = []
    if installed("torchaudio") is None:
        (site / "torchaudio").mkdir()
        (site / "torchaudio" / "__init__.py").write_text(TORCHAUDIO_STUB)
        stubs.append("torchaudio")
    if installed("kernels") is not None and "transformers==5.6.0" in need:
        (site / "kernels").mkdir()
        (site / "kernels" / "__init__.py").write_text(KERNELS_STUB)
        stubs.append("kernels")
    return {"installed": need, "stubs": stubs, "seconds": round(time.perf_counter() - t0, 1)}


def lf_child(yaml_path: str, timings_path: str) -> None:
    """Runs inside the LLaMA-Factory environment: LLaMA-Factory's own training, plus a callback
    that notes when each optimizer step ends and the peak GPU memory."""
    import yaml
    from transformers import TrainerCallback

    _patch_processor_without_torchvision()
    from llamafactory.extras.misc import check_dependencies
    from llamafactory.train.tuner import run_exp

    check_dependencies()

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.t: Dict[str, Any] = {"step_ends": []}

        def on_train_begin(self, a, state, control, **kw):
            self.t["train_begin"] = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            self.t["step_ends"].append(time.perf_counter())

        def on_train_end(self, a, state, control, **kw):
            import torch

            if torch.cuda.is_available():
                self.t["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
            Path(timings_path).write_text(json.dumps(self.t))

    run_exp(yaml.safe_load(Path(yaml_path).read_text()), callbacks=[StepTimer()])


def _patch_processor_without_torchvision() -> None:
    """transformers' Qwen2.5-VL processor wants a video processor, and every video processor needs
    torchvision. Where torchvision is missing, give LLaMA-Factory the processor with the PIL image
    processor and a placeholder video processor (this benchmark has no videos)."""
    try:
        import torchvision  # noqa: F401
        return
    except Exception:
        pass
    from transformers import AutoProcessor, AutoTokenizer, Qwen2_5_VLProcessor, Qwen2VLImageProcessorPil

    original = AutoProcessor.from_pretrained

    class NoVideo:
        """No videos in this benchmark."""

    class Processor(Qwen2_5_VLProcessor):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            Qwen2_5_VLProcessor.__init__(self, image_processor, tokenizer, None, chat_template=chat_template)
            self.video_processor = NoVideo()

    def from_pretrained(path, *a, **kw):
        try:
            return original(path, *a, **kw)
        except ImportError:
            template = json.loads((Path(path) / "chat_template.json").read_text())["chat_template"]
            return Processor(Qwen2VLImageProcessorPil.from_pretrained(path), AutoTokenizer.from_pretrained(path),
                             chat_template=template)

    AutoProcessor.from_pretrained = from_pretrained


if __name__ == "__main__":
    lf_child(sys.argv[1], sys.argv[2])
