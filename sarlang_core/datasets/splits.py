"""Train / test split by image, as the paper does: 7:3 for caption images, the source dataset's
own split (SARDet train -> train, val -> test) where one is given.

    splits = split_by_image(ids, ratio=0.7, seed=0, keep={"a.png": "train", "b.png": "val"})
    images = apply_splits(images, splits)

Deterministic and independent of input order: each free image is ranked by a keyed hash of
(seed, id), and the first round(ratio * n_free) of that ranking go to train. The same set of ids
and the same seed always give the same split; an image is never on both sides.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Dict, Iterable, Mapping, Optional

from ..errors import SarlangError
from .records import ImageRecord

TRAIN, TEST = "train", "test"
_ALIASES = {"train": TRAIN, "training": TRAIN, "trainval": TRAIN,
            "test": TEST, "val": TEST, "valid": TEST, "validation": TEST, "eval": TEST}


def _rank_key(seed: int, image_id: str) -> bytes:
    return hashlib.blake2b(image_id.encode("utf-8"), digest_size=16,
                           key=str(seed).encode("utf-8")[:64]).digest()


def normalise_split(name: str) -> str:
    """``"val"`` -> ``"test"``, ``"Train"`` -> ``"train"``; unknown names are an error."""
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise SarlangError(f"unknown split '{name}': use train or test (val/validation count as test)")
    return _ALIASES[key]


def split_by_image(image_ids: Iterable[str], *, ratio: float = 0.7, seed: int = 0,
                   keep: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """``{image_id: "train" | "test"}`` for every distinct id. ``ratio``: the train share of the
    images without a given split; ``keep``: given splits, respected as they are (ids in ``keep``
    but not in ``image_ids`` are ignored)."""
    if not 0.0 <= float(ratio) <= 1.0:
        raise SarlangError(f"split ratio must be between 0 and 1, got {ratio}")
    keep = keep or {}
    ids = sorted(set(str(i) for i in image_ids))
    out: Dict[str, str] = {}
    free = []
    for image_id in ids:
        if image_id in keep and keep[image_id] is not None:
            out[image_id] = normalise_split(keep[image_id])
        else:
            free.append(image_id)
    free.sort(key=lambda i: (_rank_key(seed, i), i))
    n_train = int(round(float(ratio) * len(free)))   # round-half-even, deterministic
    for k, image_id in enumerate(free):
        out[image_id] = TRAIN if k < n_train else TEST
    return out


def apply_splits(images: Mapping[str, ImageRecord], splits: Mapping[str, str]) -> Dict[str, ImageRecord]:
    """The image records with ``split`` set from ``splits`` (images not in it are unchanged)."""
    return {k: (dataclasses.replace(rec, split=splits[k]) if k in splits else rec)
            for k, rec in images.items()}
