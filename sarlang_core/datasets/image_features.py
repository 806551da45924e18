"""Image feature vectors for the overall image similarity (paper Appendix A).

The paper used VGG16 features; its weights are not bundled, so features come either

* from a file: ``FEATURES.npy`` holds an (n, d) array. Its rows follow the ids listed one per
  line in ``FEATURES.ids.txt`` beside it when that file exists, else the store's image order
  (``Store.images()``: ascending id), in which case n must equal the number of images; or
* from a local HuggingFace vision model folder (ViT, DINOv2, CLIP/SigLIP vision, ...), loaded
  with ``local_files_only=True``: the model's image features (``get_image_features``), else its
  pooled output, else the mean of its last hidden state.

    rows = feature_rows("feats.npy", all_ids, wanted_ids)      # (len(wanted_ids), d), lazily read
    encoder = ImageEncoder("models/dinov2-small"); vecs = encoder.encode([rgb_uint8, ...])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, List, Optional, Sequence

import numpy as np

from ..errors import SarlangError
from ..progress import CancelToken, ProgressCallback, check, report


def ids_file(features_path) -> Path:
    """The companion ids file of ``FEATURES.npy``: ``FEATURES.ids.txt``."""
    p = Path(features_path)
    return p.with_name(p.stem + ".ids.txt")


def feature_rows(features_path, store_ids: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    """The rows of ``features_path`` for the image ids ``wanted``, in that order. Without a
    companion ids file, row k belongs to ``store_ids[k]`` (the store's image order)."""
    path = Path(features_path)
    if not path.is_file():
        raise SarlangError(f"{path}: no such features file")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SarlangError(f"{path}: not a NumPy .npy array ({exc})") from exc
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise SarlangError(f"{path}: image features must be an (images x dimensions) array, got shape {arr.shape}")
    companion = ids_file(path)
    if companion.is_file():
        ids = [line.strip() for line in companion.read_text(encoding="utf-8").splitlines() if line.strip()]
        source = f"{companion.name} lists"
    else:
        ids = list(store_ids)
        source = "the store has"
    if len(ids) != arr.shape[0]:
        raise SarlangError(f"{path}: {arr.shape[0]} feature rows but {source} {len(ids)} images; write one row "
                           f"per image in the store's id order, or list the row ids in {companion.name}")
    row_of = {image_id: k for k, image_id in enumerate(ids)}
    missing = [i for i in wanted if i not in row_of]
    if missing:
        raise SarlangError(f"{path}: no feature row for {len(missing)} image(s), e.g. {missing[0]!r}")
    return np.asarray(arr[[row_of[i] for i in wanted]], dtype=np.float32)


class ImageEncoder:
    """A local HuggingFace vision model as an image -> vector function."""

    def __init__(self, folder, *, device: Optional[str] = None):
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise SarlangError(f"{folder}: not a model folder (no config.json)")
        try:
            import torch
            from transformers import AutoImageProcessor, AutoModel
        except ImportError as exc:
            raise SarlangError(f"image features from a model need torch and transformers ({exc})") from exc
        self._torch = torch
        self.name = folder.name
        try:
            self.processor = AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
        except (OSError, ValueError, KeyError) as exc:
            raise SarlangError(f"{folder}: cannot load a vision model and its image processor ({exc})") from exc
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)

    def encode(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(len(images), d) float32 features of H x W x 3 (or H x W) uint8 images."""
        torch = self._torch
        rgb = [np.repeat(im[..., None], 3, axis=2) if im.ndim == 2 else im[..., :3] for im in images]
        pixels = self.processor(images=rgb, return_tensors="pt")["pixel_values"].to(self.device)
        with torch.no_grad():
            if hasattr(self.model, "get_image_features"):        # CLIP, SigLIP: the projected embedding
                out = self.model.get_image_features(pixel_values=pixels)
                feats = out if torch.is_tensor(out) else out.pooler_output
            else:
                out = self.model(pixel_values=pixels)
                pooled = getattr(out, "pooler_output", None)
                feats = pooled if pooled is not None else out.last_hidden_state.mean(dim=1)
        feats = feats.reshape(feats.shape[0], -1)
        return feats.float().cpu().numpy()


def iter_image_features(images: Iterable[Any], encoder: Any, *, total: int = 0, batch_size: int = 16,
                        progress: Optional[ProgressCallback] = None,
                        cancel: Optional[CancelToken] = None) -> Iterator[np.ndarray]:
    """Features of ``images`` (uint8 arrays, produced lazily) batch by batch; ``encoder``: an
    object with ``encode(list of arrays)`` (an ``ImageEncoder``). Progress stage "embed images"."""
    batch: List[np.ndarray] = []
    done = 0
    for image in images:
        check(cancel)
        batch.append(image)
        if len(batch) >= batch_size:
            done += len(batch)
            yield np.asarray(encoder.encode(batch), dtype=np.float32)
            batch = []
            report(progress, "embed images", done, max(total, done))
    if batch:
        done += len(batch)
        yield np.asarray(encoder.encode(batch), dtype=np.float32)
        report(progress, "embed images", done, max(total, done))
