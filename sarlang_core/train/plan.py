"""Before training: which base model, and which samples fit the cutoff (token-length statistics).

    model_path, family = resolve_model("qwen2.5-vl-3b")         # a registry name or a folder
    planned = plan_samples(processor, family, config, data)     # kept samples, skipped, truncated, stats
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple

from ..errors import ModelError, TrainError
from .config import TrainConfig
from .data import TrainData, TrainSample
from .encode import Encoder


def resolve_model(name_or_path: str) -> Tuple[Path, str]:
    """(base model folder, family) for a registry name or a folder; an adapter is refused."""
    from ..vlm.models import inspect_model, load_registry

    path = Path(name_or_path).expanduser()
    if not path.exists():
        entry = load_registry().get(name_or_path)   # ModelError naming the known ones
        if entry.adapter is not None:
            raise TrainError(f"{name_or_path!r} is a base model with an adapter; train on its base "
                             f"({entry.path}) or merge the adapter into a model folder first")
        path = entry.path
    info = inspect_model(path)
    if info.kind != "base":
        raise ModelError(f"{path}: is a LoRA adapter; give the base model it was made for")
    assert info.family is not None
    return info.path, info.family


def _percentile(values: List[int], q: float) -> int:
    if not values:
        return 0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


@dataclass
class Planned:
    encoder: Encoder
    samples: List[TrainSample] = field(default_factory=list)
    lengths: List[int] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)      # ids left out for their length
    truncated: int = 0
    source: Dict[str, Any] = field(default_factory=dict)

    def stats(self) -> Dict[str, Any]:
        n = self.lengths
        return {"count": len(n), "min": min(n) if n else 0, "mean": round(sum(n) / len(n), 1) if n else 0,
                "p50": _percentile(n, 50), "p95": _percentile(n, 95), "max": max(n) if n else 0,
                "over_cutoff": self.truncated + len(self.skipped), "truncated": self.truncated,
                "skipped": len(self.skipped), "cutoff": self.encoder.config.cutoff}

    def summary(self) -> Dict[str, Any]:
        return {**self.source, "kept": len(self.samples), "tokens": self.stats(), "skipped_ids": self.skipped[:50]}

    def describe(self) -> str:
        s = self.stats()
        text = (f"{len(self.samples):,} samples, {s['mean']:.0f} tokens on average (max {s['max']:,}, "
                f"cutoff {s['cutoff']:,})")
        if s["over_cutoff"]:
            text += f"; {s['over_cutoff']:,} over the cutoff: {s['truncated']:,} truncated, {s['skipped']:,} skipped"
        return text


def plan_samples(processor: Any, family: str, config: TrainConfig, data: TrainData, *,
                 require: bool = True) -> Planned:
    """Every sample's length (without reading images: their stored sizes), those over the cutoff
    truncated or skipped as configured. No sample left is a TrainError (``require``: else an
    empty plan, for the preview)."""
    encoder = Encoder(processor, family, config)
    planned = Planned(encoder, source=data.summary())
    for s in data.samples:
        if not (s.width and s.height):
            s = _with_size(s)
        n = encoder.length(s)
        if n > config.cutoff:
            if config.overlong == "skip" or encoder.prompt_length(s) >= config.cutoff:
                planned.skipped.append(s.id)
                continue
            planned.truncated += 1
        planned.samples.append(s)
        planned.lengths.append(min(n, config.cutoff))
    if require and not planned.samples:
        raise TrainError(f"every sample is longer than the cutoff ({config.cutoff} tokens) or its prompt alone is: "
                         "raise the cutoff or lower image_max_pixels")
    return planned


def _with_size(sample: TrainSample) -> TrainSample:
    from dataclasses import replace

    from ..io import open_scene

    try:
        from PIL import Image

        with Image.open(sample.image) as im:
            w, h = im.size
    except Exception:   # not a picture PIL reads (a float GeoTIFF): its header through rasterio
        with open_scene(sample.image) as scene:
            w, h = scene.width, scene.height
    return replace(sample, width=w, height=h)
