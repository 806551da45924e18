"""Loading a model folder's processor (tokenizer + image processor + chat template) without torchvision.

Two traps with transformers 5.x (see FIELD_NOTES):
1. Qwen2-VL / Qwen2.5-VL processors want a video processor, and every video processor needs
   torchvision. We build the processor explicitly with ``video_processor=None`` and the PIL image
   processor (``Qwen2VLImageProcessorPil``), reading the same files a real checkpoint ships.
2. ``AutoProcessor.from_pretrained`` on such a folder silently returns only the tokenizer. We
   never trust it blindly: ``ensure_processor`` checks that an image processor came back.

LLaVA-1.5 loads with the stock AutoProcessor (its CLIP image processor has a PIL variant); if
that ever fails or returns a bare tokenizer, it is built explicitly the same way.

``model_input_size`` says what size an image becomes inside the processor (for box coordinates).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import ModelError, RequestError

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

QWEN_FAMILIES = ("qwen2_5_vl", "qwen2_vl")

_QWEN_CLASSES: dict = {}


def _qwen_processor_class(family: str):
    """A subclass of the family's processor whose only sub-processors are image + tokenizer.

    ProcessorMixin derives its sub-processors from the ``__init__`` signature, so dropping the
    ``video_processor`` parameter is what keeps torchvision out (and keeps save/load symmetric)."""
    if family in _QWEN_CLASSES:
        return _QWEN_CLASSES[family]
    base: type
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor
        base = Qwen2_5_VLProcessor
    elif family == "qwen2_vl":
        from transformers import Qwen2VLProcessor
        base = Qwen2VLProcessor
    else:
        raise ModelError(f"no Qwen processor for family {family!r}")

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        base.__init__(self, image_processor, tokenizer, None, chat_template=chat_template)

    cls = type(base.__name__ + "NoVideo", (base,), {"__init__": __init__, "__module__": __name__,
                                                    "__doc__": f"{base.__name__} without a video processor."})
    _QWEN_CLASSES[family] = cls
    return cls


def __getattr__(name: str):
    # Importing transformers is slow: the classes are only made when first asked for.
    if name == "QwenVLProcessorNoVideo":
        return _qwen_processor_class("qwen2_5_vl")
    if name == "Qwen2VLProcessorNoVideo":
        return _qwen_processor_class("qwen2_vl")
    raise AttributeError(name)


def pil_image_processor(**kwargs):
    """The Qwen2-VL image processor in its PIL flavour (the default one needs torchvision)."""
    try:
        from transformers import Qwen2VLImageProcessorPil as cls
    except ImportError:  # transformers releases before the PIL backends: the plain class is PIL-based
        from transformers import Qwen2VLImageProcessor as cls
    return cls(**kwargs)


def read_chat_template(folder: PathLike) -> Optional[str]:
    """The chat template a checkpoint ships: chat_template.jinja (transformers 5), chat_template.json
    (Qwen hub repos), or the tokenizer_config.json entry; None when there is none."""
    folder = Path(folder)
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    for name in ("chat_template.json", "tokenizer_config.json"):
        f = folder / name
        if f.is_file():
            try:
                tpl = json.loads(f.read_text(encoding="utf-8")).get("chat_template")
            except (OSError, ValueError) as exc:
                raise ModelError(f"{f}: unreadable JSON ({exc})") from exc
            if isinstance(tpl, str) and tpl:
                return tpl
    return None


def _image_processor_config(folder: Path) -> dict:
    """Image-processor settings from preprocessor_config.json (hub layout) or, for folders saved by
    transformers 5, the ``image_processor`` section of processor_config.json."""
    pre = folder / "preprocessor_config.json"
    if pre.is_file():
        return json.loads(pre.read_text(encoding="utf-8"))
    proc = folder / "processor_config.json"
    if proc.is_file():
        return dict(json.loads(proc.read_text(encoding="utf-8")).get("image_processor", {}))
    raise ModelError(f"{folder}: no preprocessor_config.json: the image processor settings are missing")


_IMAGE_KEYS = ("min_pixels", "max_pixels", "size", "patch_size", "temporal_patch_size", "merge_size",
               "image_mean", "image_std", "do_resize", "do_rescale", "rescale_factor", "do_normalize",
               "do_convert_rgb", "resample")


def _load_qwen(folder: Path, family: str):
    from transformers import AutoTokenizer

    cfg = _image_processor_config(folder)
    image_processor = pil_image_processor(**{k: cfg[k] for k in _IMAGE_KEYS if k in cfg})
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    template = read_chat_template(folder) or getattr(tokenizer, "chat_template", None)
    if not template:
        raise ModelError(f"{folder}: no chat template (chat_template.json / .jinja): is this an instruct model?")
    return _qwen_processor_class(family)(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)


def _load_llava(folder: Path):
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
        if getattr(processor, "image_processor", None) is not None:
            return processor
    except (ImportError, OSError, ValueError, TypeError) as exc:
        log.debug("AutoProcessor cannot load %s (%s); building the LLaVA processor", folder, exc)
    # Explicit construction: the CLIP image processor's PIL flavour + the folder's tokenizer.
    from transformers import AutoTokenizer, CLIPImageProcessorPil, LlavaProcessor

    cfg = _image_processor_config(folder)
    keys = ("size", "crop_size", "do_center_crop", "image_mean", "image_std", "do_resize", "do_rescale",
            "rescale_factor", "do_normalize", "do_convert_rgb", "resample")
    image_processor = CLIPImageProcessorPil(**{k: cfg[k] for k in keys if k in cfg})
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    extra = {}
    pcfg = folder / "processor_config.json"
    if pcfg.is_file():
        d = json.loads(pcfg.read_text(encoding="utf-8"))
        extra = {k: d[k] for k in ("patch_size", "vision_feature_select_strategy", "num_additional_image_tokens")
                 if k in d}
    return LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                          chat_template=read_chat_template(folder) or tokenizer.chat_template, **extra)


def ensure_processor(obj: Any, folder: PathLike) -> Any:
    """Trap 2 guard: a multimodal processor (with an image processor and a tokenizer), not a tokenizer."""
    if getattr(obj, "image_processor", None) is None or getattr(obj, "tokenizer", None) is None:
        raise ModelError(f"{folder}: loading the processor gave a {type(obj).__name__}, not an image+text "
                         "processor (preprocessor_config.json missing or unreadable?)")
    return obj


def load_processor(folder: PathLike, family: str):
    """The processor of a checkpoint folder of ``family`` ("qwen2_5_vl", "qwen2_vl" or "llava")."""
    folder = Path(folder)
    try:
        if family in QWEN_FAMILIES:
            proc = _load_qwen(folder, family)
        elif family == "llava":
            proc = _load_llava(folder)
        else:
            raise ModelError(f"{folder}: no processor for model type {family!r}")
    except ModelError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{folder}: the processor could not be loaded ({type(exc).__name__}: {exc})") from exc
    return ensure_processor(proc, folder)


def model_input_size(processor, family: str, width: int, height: int) -> tuple:
    """(width, height) of a width x height image after the processor's own resize: Qwen's smart
    resize (sides multiples of patch x merge = 28, pixels within the processor's min/max), or
    LLaVA's shortest-edge resize + centre crop."""
    if width < 1 or height < 1:
        raise RequestError(f"image size must be positive, got {width} x {height}")
    ip = processor.image_processor
    if family in QWEN_FAMILIES:
        return qwen_resize(width, height, ip.patch_size * ip.merge_size, ip.size["shortest_edge"],
                           ip.size["longest_edge"])
    return _llava_size(ip, width, height)


def qwen_resize(width: int, height: int, factor: int = 28, min_pixels: int = 56 * 56,
                max_pixels: int = 28 * 28 * 1280) -> tuple:
    """Qwen2-VL's "smart resize": each side to the nearest multiple of ``factor``, then the whole
    image scaled (aspect kept, sides floored/ceiled to multiples) into [min_pixels, max_pixels]."""
    if max(width, height) / min(width, height) > 200:
        raise RequestError(f"aspect ratio {width}:{height} is too extreme for the model (max 200:1)")
    w, h = round(width / factor) * factor, round(height / factor) * factor
    if w * h > max_pixels:
        shrink = math.sqrt(width * height / max_pixels)
        w = max(factor, math.floor(width / shrink / factor) * factor)
        h = max(factor, math.floor(height / shrink / factor) * factor)
    elif w * h < min_pixels:
        grow = math.sqrt(min_pixels / (width * height))
        w, h = math.ceil(width * grow / factor) * factor, math.ceil(height * grow / factor) * factor
    return (w, h)


def _llava_size(ip, width: int, height: int) -> tuple:
    """CLIP-style preprocessing: shortest edge to size, then an optional centre crop."""
    def get(obj, key):
        return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)

    if getattr(ip, "do_center_crop", False) and ip.crop_size:
        return (get(ip.crop_size, "width"), get(ip.crop_size, "height"))
    size = ip.size
    if get(size, "height") and get(size, "width"):
        return (get(size, "width"), get(size, "height"))
    short = get(size, "shortest_edge")
    scale = short / min(width, height)
    return (round(width * scale), round(height * scale))
