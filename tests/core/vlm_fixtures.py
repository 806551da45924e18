"""Session fixtures for the VLM tests: tiny models built once per session (no downloads).

    from .vlm_fixtures import tiny_qwen, tiny_lora, tiny_llava, sar_image  # noqa: F401
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sarlang_core import synthetic as syn


def sar_image(h: int = 300, w: int = 400, seed: int = 0) -> Image.Image:
    """A preprocessed SAR-like quick-look: reflectivity x 1-look speckle, in dB, stretched to uint8 'L'."""
    refl = syn.reflectivity_map(h, w, seed)
    db = 10 * np.log10(syn.speckle(refl, 1.0, seed + 1) + 1e-6)
    return Image.fromarray(np.clip((db + 25.0) / 25.0 * 255.0, 0, 255).astype(np.uint8))


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory):
    from sarlang_core.vlm.tiny import build_tiny_qwen2_5_vl

    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("vlm") / "tiny-qwen2.5-vl")


@pytest.fixture(scope="session")
def tiny_lora(tiny_qwen, tmp_path_factory):
    from sarlang_core.vlm.tiny import build_tiny_lora

    return build_tiny_lora(tiny_qwen, tmp_path_factory.mktemp("vlm") / "tiny-lora", seed=1)


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory):
    from sarlang_core.vlm.tiny import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("vlm") / "tiny-llava-1.5")
