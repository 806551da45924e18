"""Helpers for the VLM tests. The tiny models (tiny_qwen, tiny_lora, tiny_llava) are session
fixtures in tests/support/tiny_models.py: request them by name, do not import them.

    from .vlm_fixtures import sar_image
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from sarlang_core import synthetic as syn


def sar_image(h: int = 300, w: int = 400, seed: int = 0) -> Image.Image:
    """A preprocessed SAR-like quick-look: reflectivity x 1-look speckle, in dB, stretched to uint8 'L'."""
    refl = syn.reflectivity_map(h, w, seed)
    db = 10 * np.log10(syn.speckle(refl, 1.0, seed + 1) + 1e-6)
    return Image.fromarray(np.clip((db + 25.0) / 25.0 * 255.0, 0, 255).astype(np.uint8))

