"""Merge a LoRA adapter into its base model: one plain model folder (what vLLM serves fastest, and
what serves vision-tower LoRA weights at all: vLLM ignores those on the vision encoder).

    merged = merge_adapter("models/qwen2.5-vl-3b", "runs/r1/adapter", "models/qwen2.5-vl-3b-sar")

The folders are checked first (``inspect_model``/``check_adapter``: an adapter made for another
base is a ModelError before anything loads). On a CPU the merge runs in float32 (W + scale * B A
without bf16 rounding) and the weights are saved in the base checkpoint's dtype, so the merged
folder is as large as the base; on a GPU the base loads in its own dtype. The folder is built in a
hidden sibling and renamed into place at the end: a failure or a cancel leaves nothing behind.
``sarlang_merge.json`` in it records the base, the adapter and when.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Optional, Tuple, Union

from ..atomic import check_new_folder, staged_folder
from ..errors import CancelledError, ModelError, TrainError
from ..progress import CancelToken, ProgressCallback, check, report
from ..variant import require_full
from ..vlm.models import ModelInfo, inspect_model

PathLike = Union[str, os.PathLike]

PROVENANCE = "sarlang_merge.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack")
_DTYPES = ("float32", "bfloat16", "float16")


def _checkpoint_dtype(base: Path) -> str:
    """The dtype the base checkpoint was saved in (config.json ``dtype``/``torch_dtype``), else float32."""
    try:
        cfg = json.loads((base / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "float32"
    for d in (cfg, cfg.get("text_config") or {}):
        value = d.get("dtype") or d.get("torch_dtype")
        if isinstance(value, str) and value.replace("torch.", "") in _DTYPES:
            return value.replace("torch.", "")
    return "float32"


def _is_weight_file(name: str) -> bool:
    return name.endswith(_WEIGHT_SUFFIXES) or name.endswith((".index.json", ".safetensors.index.json"))


def _copy_support_files(base: Path, dest: Path) -> list:
    """Copy the base's non-weight files (tokenizer, processor, chat template, licence...) that the
    merged save did not write itself (its config.json and generation_config.json win)."""
    copied = []
    for src in sorted(base.iterdir()):
        name = src.name
        if (not src.is_file() or name.startswith(".") or _is_weight_file(name) or name == PROVENANCE
                or name.lower().startswith("readme") or (dest / name).exists()):
            continue
        shutil.copy2(src, dest / name)
        copied.append(name)
    return copied


def _check_out_dir(out: Path) -> None:
    try:
        check_new_folder(out)
    except FileExistsError as exc:
        raise TrainError(str(exc)) from exc


def _checked(base: PathLike, adapter: PathLike) -> Tuple[ModelInfo, ModelInfo]:
    base_info = inspect_model(base)
    if base_info.kind != "base":
        raise ModelError(f"{base_info.path}: is a LoRA adapter, not a base model; give the base folder first")
    adapter_info = inspect_model(adapter)
    if adapter_info.kind != "adapter":
        raise ModelError(f"{adapter_info.path}: is a full model, not a LoRA adapter (nothing to merge)")
    return base_info, inspect_model(adapter, base=base_info)


def merge_adapter(base: PathLike, adapter: PathLike, out_dir: PathLike, *, device: str = "auto",
                  progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None) -> Path:
    """Write ``base`` with ``adapter`` merged into ``out_dir`` (new or empty) and return its path.
    ModelError: the folders do not fit; TrainError: ``out_dir`` is taken or the merge failed;
    CancelledError: cancelled. In every failure ``out_dir`` is as it was."""
    require_full("merging an adapter", TrainError)
    base_info, adapter_info = _checked(base, adapter)
    out = Path(out_dir).expanduser().absolute()
    _check_out_dir(out)
    total = 5
    try:
        with staged_folder(out, "merge") as tmp:
            dtype = _merge_into(base_info, adapter_info, tmp, device, progress, cancel, total)
            check(cancel)
            report(progress, "files", 4, total, "tokenizer, processor and chat template")
            copied = _copy_support_files(base_info.path, tmp)
            provenance = {
                "base": str(base_info.path.resolve()), "adapter": str(adapter_info.path.resolve()),
                "family": base_info.family, "dtype": dtype,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "adapter_problems": list(adapter_info.problems), "copied_from_base": copied,
            }
            (tmp / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
            check(cancel)
    except FileExistsError as exc:      # taken while we worked: kept as it is
        raise TrainError(str(exc)) from exc
    except BaseException as exc:
        if isinstance(exc, (CancelledError, ModelError, TrainError)) or not isinstance(exc, Exception):
            raise
        raise TrainError(f"merging {adapter_info.path.name} into {base_info.path.name} failed "
                         f"({type(exc).__name__}: {exc}); nothing was written") from exc
    report(progress, "done", total, total, str(out))
    return out


def _merge_into(base: ModelInfo, adapter: ModelInfo, dest: Path, device: str,
                progress: Optional[ProgressCallback], cancel: Optional[CancelToken], total: int) -> str:
    """Load, merge, save into ``dest``; returns the saved dtype's name."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("device 'cuda' was asked for but no CUDA GPU is available")
    saved = _checkpoint_dtype(base.path)
    load_dtype = getattr(torch, saved) if device.startswith("cuda") else torch.float32
    model: Any = None
    try:
        check(cancel)
        report(progress, "weights", 0, total, f"{base.path.name} ({base.size_bytes / 2**30:.2f} GiB) to {device}")
        kw: dict = dict(dtype=load_dtype, local_files_only=True, use_safetensors=True, trust_remote_code=False)
        if device.startswith("cuda"):
            kw["device_map"] = {"": device}
        model = AutoModelForImageTextToText.from_pretrained(base.path, **kw)
        check(cancel)
        report(progress, "adapter", 1, total, f"LoRA {adapter.path.name}")
        with warnings.catch_warnings():  # peft calls a transformers API deprecated in 5.x
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(model, str(adapter.path), is_trainable=False, local_files_only=True)
            check(cancel)
            report(progress, "merge", 2, total, "W + scale * B A")
            model = model.merge_and_unload()
        model = model.to(getattr(torch, saved))
        check(cancel)
        report(progress, "save", 3, total, f"{saved} safetensors")
        model.save_pretrained(str(dest))
    finally:
        del model
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    if not (any(dest.glob("*.safetensors")) and (dest / "config.json").is_file()):
        raise TrainError(f"{dest}: the merged save wrote no safetensors weights")
    return saved
