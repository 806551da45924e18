"""`sarlang-cli export-onnx`: a Qwen2.5-VL folder (+ a LoRA adapter, merged) as ONNX graphs that
the ONNX Runtime backend runs without torch (the field build).

    export_onnx("models/qwen2.5-vl-3b", "models/qwen-onnx", adapter="runs/r1/adapter")

Traced with torch's TorchScript-based exporter (``dynamo=False``, opset 17): the dynamo exporter
fails on the vision tower's data-dependent shapes (FIELD_NOTES). Runs on the CPU in float32 (the
graphs are float32; ONNX Runtime's CUDA provider runs them as they are). Before the folder is
renamed into place the export is checked: the same random image and prompt through ONNX Runtime
and through torch must give the same next-token logits (``check`` in the manifest); a failure or
a cancel leaves nothing behind. Graph layout: ``onnx_manifest`` and ``onnx_graphs``.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Union

from ..atomic import check_new_folder, staged_folder
from ..errors import CancelledError, ModelError
from ..progress import CancelToken, ProgressCallback, check, report
from .models import SUPPORTED_FAMILIES, inspect_model
from .onnx_manifest import EXPORTABLE, FORMAT, MANIFEST
from .processors import _image_processor_config, read_chat_template

PathLike = Union[str, os.PathLike]
OPSET = 17
TOLERANCE = 1e-3      # largest |logit difference| accepted between ONNX Runtime and torch
EXTERNAL_ABOVE = 1536 * 2**20   # graphs larger than this keep their weights in one <name>.onnx.data


def _refuse_family(family: str) -> None:
    if family in EXPORTABLE:
        return
    needs = {
        "qwen2_vl": "its vision tower (full attention in every block, a LayerNorm merger, rotary table) "
                    "as a graph of its own; the decoder and inputs are Qwen2.5-VL's",
        "llava": "its CLIP tower at 336 px with the projector, 1-D positions, and 576 image tokens per image",
    }.get(family, "a graph layout of its own")
    raise ModelError(f"ONNX export covers {', '.join(EXPORTABLE.values())}; "
                     f"{SUPPORTED_FAMILIES.get(family, family)} needs {needs}. Use the model with torch instead")


def _load_merged(model_path: Path, adapter: Optional[Path]):
    import torch
    from transformers import AutoModelForImageTextToText
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model: Any = AutoModelForImageTextToText.from_pretrained(
        model_path, dtype=torch.float32, attn_implementation="eager", local_files_only=True,
        use_safetensors=True, trust_remote_code=False)
    if adapter is not None:
        from peft import PeftModel

        with warnings.catch_warnings():   # peft calls a transformers API deprecated in 5.x
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(model, str(adapter), is_trainable=False, local_files_only=True)
            model = model.merge_and_unload()
    return model.eval()


def _trace(module, args: tuple, path: Path, inputs, outputs, dynamic: Dict[str, Dict[int, str]]) -> None:
    """Trace ``module`` into ``path``. Past 2 GB (a protobuf's limit) torch writes every weight
    as a file of its own beside the graph; the graph is traced into a folder of its own and
    its weights then gathered into one ``<name>.onnx.data`` beside ``path``."""
    import onnx
    import torch

    work = path.parent / f".{path.stem}-trace"
    work.mkdir()
    try:
        with warnings.catch_warnings():   # the TorchScript exporter is deprecated; dynamo cannot trace the tower
            warnings.simplefilter("ignore")
            with torch.no_grad():
                torch.onnx.export(module, args, str(work / path.name), input_names=list(inputs),
                                  output_names=list(outputs), dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
        size = sum(f.stat().st_size for f in work.iterdir())
        if len(list(work.iterdir())) == 1 and size < EXTERNAL_ABOVE:
            os.replace(work / path.name, path)
            return
        graph = onnx.load(str(work / path.name), load_external_data=True)
        onnx.save_model(graph, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=f"{path.name}.data", size_threshold=1024)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _export_graphs(model, dest: Path, progress, cancel, total: int) -> Dict[str, Any]:
    import torch

    from .onnx_graphs import DecoderStep, EmbedGraph, VisionGraph, decoder_io_names
    from .onnx_inputs import vision_layout

    visual, lm = model.model.visual, model.model.language_model
    vc, tc = visual.config, lm.config
    merge, patch = vc.spatial_merge_size, vc.patch_size
    check(cancel)
    report(progress, "vision", 1, total, "vision encoder (every image size)")
    gh = gw = 2 * merge * max(1, vc.window_size // (merge * patch))     # 2 x 2 windows: the mask is traced
    lay = vision_layout(gh, gw, merge, vc.window_size, patch)
    pix = torch.randn(gh * gw, vc.in_channels * vc.temporal_patch_size * patch * patch)
    args = (pix, torch.from_numpy(lay.position_ids), torch.from_numpy(lay.window_index),
            torch.from_numpy(lay.window_ids))
    _trace(VisionGraph(visual).eval(), args, dest / "vision.onnx",
           ["pixel_values", "position_ids", "window_index", "window_ids"], ["image_embeds"],
           {"pixel_values": {0: "patches"}, "position_ids": {0: "patches"}, "window_index": {0: "tokens"},
            "window_ids": {0: "patches"}, "image_embeds": {0: "tokens"}})
    check(cancel)
    report(progress, "embed", 2, total, "token embeddings")
    _trace(EmbedGraph(lm.embed_tokens).eval(), (torch.zeros(1, 3, dtype=torch.int64),), dest / "embed.onnx",
           ["input_ids"], ["inputs_embeds"], {"input_ids": {1: "seq"}, "inputs_embeds": {1: "seq"}})
    check(cancel)
    layers, kv_heads = tc.num_hidden_layers, tc.num_key_value_heads
    head_dim = getattr(tc, "head_dim", None) or tc.hidden_size // tc.num_attention_heads
    report(progress, "decoder", 3, total, f"decoder, {layers} layers with a KV cache")
    names_in, names_out = decoder_io_names(layers)
    past_len, new = 3, 4
    past = [torch.randn(1, kv_heads, past_len, head_dim) for _ in range(2 * layers)]
    step_args = (torch.randn(1, new, tc.hidden_size),
                 torch.arange(past_len, past_len + new).view(1, 1, -1).repeat(3, 1, 1),
                 torch.ones(1, past_len + new, dtype=torch.int64), *past)
    dynamic = {"inputs_embeds": {1: "new"}, "position_ids": {2: "new"}, "attention_mask": {1: "total"}}
    dynamic.update({n: {2: "past"} for n in names_in[3:]})
    dynamic.update({n: {2: "total"} for n in names_out[1:]})
    _trace(DecoderStep(lm, model.lm_head).eval(), step_args, dest / "decoder.onnx", names_in, names_out, dynamic)
    return {"text": {"layers": layers, "kv_heads": kv_heads, "head_dim": head_dim, "hidden": tc.hidden_size,
                     "vocab": tc.vocab_size},
            "vision": {"patch_size": patch, "merge_size": merge, "window_size": vc.window_size,
                       "temporal_patch_size": vc.temporal_patch_size, "fullatt_blocks": list(vc.fullatt_block_indexes)}}


def _text_files(model_path: Path, dest: Path, model) -> Dict[str, Any]:
    from .onnx_inputs import ImageSettings

    tokenizer = model_path / "tokenizer.json"
    if not tokenizer.is_file():
        raise ModelError(f"{model_path}: no tokenizer.json (the fast tokenizer file): the ONNX export needs it")
    shutil.copy2(tokenizer, dest / "tokenizer.json")
    template = read_chat_template(model_path)
    if not template:
        raise ModelError(f"{model_path}: no chat template: is this an instruct model?")
    (dest / "chat_template.jinja").write_text(template, encoding="utf-8")
    gen = model.generation_config
    eos = gen.eos_token_id if gen.eos_token_id is not None else model.config.text_config.eos_token_id
    return {"tokens": {"image": model.config.image_token_id, "eos": eos if isinstance(eos, list) else [eos],
                       "pad": gen.pad_token_id},
            "image": ImageSettings.from_config(_image_processor_config(model_path)).to_dict()}


def export_onnx(model_path: PathLike, out_dir: PathLike, *, adapter: Optional[PathLike] = None,
                progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None) -> Path:
    """Export ``model_path`` (+ ``adapter``, merged) into ``out_dir`` (new or empty); returns it.
    ModelError for a folder that cannot be exported; nothing is written then."""
    from .. import __version__

    info = inspect_model(model_path)
    if info.kind != "base":
        raise ModelError(f"{info.path}: is {'an ONNX export' if info.kind == 'onnx' else 'a LoRA adapter'}; "
                         "give the base model folder (and the adapter with --adapter)")
    assert info.family is not None
    _refuse_family(info.family)
    adapter_info = inspect_model(adapter, base=info) if adapter else None
    try:
        check_new_folder(Path(out_dir).expanduser().absolute())
    except FileExistsError as exc:
        raise ModelError(str(exc)) from exc
    total = 6
    report(progress, "load", 0, total, f"{info.path.name}" + (f" + {adapter_info.path.name}" if adapter_info else ""))
    model = _load_merged(info.path, adapter_info.path if adapter_info else None)
    try:
        with staged_folder(out_dir, "export") as dest:
            manifest: Dict[str, Any] = {"format": FORMAT, "app_version": __version__, "family": info.family,
                                        "source": {"model": info.path.name, "model_path": str(info.path),
                                                   "adapter": adapter_info.path.name if adapter_info else None},
                                        "opset": OPSET, "dtype": "float32",
                                        "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            manifest.update(_export_graphs(model, dest, progress, cancel, total))
            manifest.update(_text_files(info.path, dest, model))
            (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            check(cancel)
            report(progress, "check", 4, total, "ONNX Runtime against torch on a random image")
            manifest["check"] = _check_against_torch(model, dest)
            (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    except (CancelledError, ModelError):
        raise
    except FileExistsError as exc:      # ``out_dir`` was taken while the export ran
        raise ModelError(str(exc)) from exc
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelError(f"exporting {info.path.name} to ONNX failed ({type(exc).__name__}: {exc}); "
                         "nothing was written") from exc
    finally:
        del model
        gc.collect()
    report(progress, "done", total, total, str(out_dir))
    return Path(out_dir).expanduser().absolute()


def _check_against_torch(model, folder: Path) -> Dict[str, Any]:
    """Next-token logits of one random 84 x 112 image and prompt, both ways; ModelError past TOLERANCE."""
    import numpy as np
    import torch

    from .backend import ChatTurn
    from .onnx_backend import OnnxBackend

    backend = OnnxBackend(folder, device="cpu")
    backend.load()
    try:
        image = (np.random.default_rng(0).random((84, 112, 3)) * 255).astype(np.uint8)
        prompt = backend.prepare(image, [ChatTurn("user", "Describe the image.")])
        ort_logits = backend.prefill_logits(prompt)
        assert prompt.grid is not None and prompt.pixels is not None
        grid = torch.tensor([[1, prompt.grid[0], prompt.grid[1]]])
        with torch.no_grad():
            out = model(input_ids=torch.from_numpy(prompt.input_ids), pixel_values=torch.from_numpy(prompt.pixels),
                        image_grid_thw=grid, mm_token_type_ids=torch.from_numpy(prompt.token_types))
        ref = out.logits[0, -1].numpy()
    finally:
        backend.unload()
    diff = float(np.abs(ort_logits.reshape(-1) - ref).max())
    if not np.isfinite(diff) or diff > TOLERANCE * max(1.0, float(np.abs(ref).max())):
        raise ModelError(f"the ONNX graphs disagree with torch (largest logit difference {diff:.3g}): not exported")
    return {"max_logit_diff": diff, "same_next_token": bool(ort_logits.argmax() == ref.argmax())}
