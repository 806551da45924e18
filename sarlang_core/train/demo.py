"""A fine-tuning demo that needs no download: a tiny random Qwen2.5-VL and 8 toy SAR-like chips,
each with the object it shows as the answer (`sarlang-cli train demo DIR`).

The model is ~1 M parameters with its output layer scaled so that training can make an answer
likely (see vlm/tiny.py); 60 steps on a CPU take a few seconds and take the loss from ~7 to ~0.3.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Union

ANSWERS = ("ship", "harbor", "bridge", "tank")
QUESTION = "What is the object in the image?"
PathLike = Union[str, Path]


def write_toy_images(folder: PathLike, n: int = 8, size: int = 112, seed: int = 0) -> List[str]:
    """``n`` speckled chips as 8-bit PNGs; returns their names relative to the folder's parent."""
    import numpy as np
    from PIL import Image

    from .. import synthetic as syn

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        refl = syn.reflectivity_map(size, size, seed + i)
        db = 10 * np.log10(syn.speckle(refl, 1.0, seed + 100 + i) + 1e-6)
        Image.fromarray(np.clip((db + 25.0) / 25.0 * 255.0, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")
        names.append(f"{folder.name}/{i}.png")
    return names


def write_toy_dataset(folder: PathLike, n: int = 8) -> Path:
    """A SARLANG-1M-style JSON (sharegpt messages + images) of ``n`` chips: folder/toy.json."""
    folder = Path(folder)
    names = write_toy_images(folder / "imgs", n)
    records = [{"messages": [{"role": "user", "content": "<image>" + QUESTION},
                             {"role": "assistant", "content": ANSWERS[i % len(ANSWERS)]}], "images": [name]}
               for i, name in enumerate(names)]
    path = folder / "toy.json"
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path


def write_demo(folder: PathLike) -> Dict[str, Path]:
    """The tiny model (folder/tiny-qwen2.5-vl) and the toy dataset (folder/toy.json)."""
    from transformers.utils import logging as hf_logging

    from ..vlm.tiny import build_tiny_qwen2_5_vl

    hf_logging.disable_progress_bar()   # no "Writing model shards" bar on the terminal
    folder = Path(folder)
    model = build_tiny_qwen2_5_vl(folder / "tiny-qwen2.5-vl", logit_scale=8.0)
    return {"model": model, "dataset": write_toy_dataset(folder)}
