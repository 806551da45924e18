"""LocalBackend: a Qwen2.5-VL, Qwen2-VL or LLaVA-1.5 folder (+ optional LoRA adapter) run in process.

    backend = LocalBackend("models/qwen2.5-vl-3b", "models/adapters/sarlang-lora")
    backend.load(progress=print)
    for piece in backend.stream(image, [ChatTurn("user", "How many ships are there?")]):
        print(piece, end="")

Local files only (``local_files_only=True``, ``use_safetensors=True``, ``trust_remote_code=False``).
CUDA in bfloat16 when available, else CPU float32.

Streaming: ``model.generate`` runs on one long-lived worker thread per backend (answers queue
there in turn) with a streamer whose ``put`` only queues token ids, stamped; the consumer decodes
incrementally in its own thread. A StoppingCriteria polls the CancelToken each step, so cancelling stops within a token;
``stream`` then raises CancelledError once the worker has finished (the model is free again).
"""

from __future__ import annotations

import gc
import queue
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from ..errors import CancelledError, DeviceLostError, ModelError, OutOfMemoryError, RequestError
from ..progress import CancelToken, ProgressCallback, check, report
from ..variant import require_full
from .backend import ChatTurn, GenerationConfig, check_turns
from .decoding import DecodePlan, resolve_decode_mode, warm_up
from .gpu_faults import is_device_lost
from .gpu_memory import CudaMemoryMeter, memory_meter, memory_report
from .models import SUPPORTED_FAMILIES, ModelInfo, inspect_model
from .processors import load_processor, model_input_size
from .streaming import END, CancelCriteria, IncrementalDecoder, TokenQueue


def _resolve_device_dtype(device: str, dtype: Any):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("device 'cuda' was asked for but no CUDA GPU is available")
    if dtype == "auto":
        dtype = torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else (
            torch.float16 if device.startswith("cuda") else torch.float32)
    elif isinstance(dtype, str):
        names = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
        if dtype not in names:
            raise ModelError(f"dtype must be auto, {', '.join(names)}; got {dtype!r}")
        dtype = names[dtype]
    return device, dtype


class LocalBackend:
    """VLMBackend over a local transformers checkpoint and an optional PEFT LoRA adapter."""

    def __init__(self, model_path: Union[str, Path], adapter_path: Union[str, Path, None] = None, *,
                 device: str = "auto", dtype: Any = "auto", decode: Optional[str] = None) -> None:
        # Cheap file checks only (no torch): a bad folder fails here, before any long load.
        self.info: Optional[ModelInfo] = inspect_model(model_path)
        if self.info.kind != "base":
            raise ModelError(f"{model_path}: is a LoRA adapter; give its base model as model_path")
        assert self.info.family is not None   # inspect_model reads it from config.json for every base
        self.adapter_info = inspect_model(adapter_path, base=self.info) if adapter_path else None
        self.model_path = self.info.path
        self.adapter_path = self.adapter_info.path if self.adapter_info else None
        self.family: str = self.info.family
        self._device_req, self._dtype_req = device, dtype
        self._decode_req = decode          # decoding.DECODE_MODES; None: SARLANG_DECODE or auto
        self.decode_mode = "reference"     # resolved at load (decoding.resolve_decode_mode)
        self.decode_note = ""              # why compiled decoding is off, when it failed to start
        self.device_note = ""              # why the model left its GPU, when it did
        self.device: Optional[str] = None
        self.dtype: Any = None       # a torch.dtype once loaded
        self.model: Any = None       # the transformers model (PEFT-wrapped with an adapter), once loaded
        self.processor: Any = None   # its transformers processor, once loaded
        self._pool: Optional[ThreadPoolExecutor] = None   # the generation thread, made on first use

    @classmethod
    def from_loaded(cls, model, processor, *, family: str, name: str = "in-memory",
                    decode: Optional[str] = None) -> "LocalBackend":
        """Wrap a model already in memory (benchmarks, tests): stream/answer work; load is a no-op."""
        self = cls.__new__(cls)
        self.info = self.adapter_info = None
        self.model_path, self.adapter_path, self.family = Path(name), None, family
        param = next(model.parameters())
        self.device, self.dtype = str(param.device), param.dtype
        self._device_req, self._dtype_req, self._decode_req = self.device, self.dtype, decode
        self.decode_mode, self.decode_note = resolve_decode_mode(decode, self.device), ""
        self.device_note = ""
        self.model, self.processor = model.eval(), processor
        self._pool = None
        return self

    # ------------------------------------------------------------ lifecycle
    @property
    def loaded(self) -> bool:
        return self.model is not None

    def load(self, *, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None) -> None:
        if self.loaded:
            return
        if self.info is None:
            raise ModelError("an in-memory model cannot be loaded again after unload()")
        require_full(f"{self.model_path.name}: a local transformers model", ModelError)
        import torch
        from transformers import AutoConfig, AutoModelForImageTextToText
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()   # loading is reported through ``progress``, not tqdm on stderr
        self.device, self.dtype = _resolve_device_dtype(self._device_req, self._dtype_req)
        self.decode_mode, self.decode_note = resolve_decode_mode(self._decode_req, self.device), ""
        total = (4 if self.adapter_path else 3) + (self.decode_mode == "compiled")
        try:
            check(cancel)
            report(progress, "config", 0, total, f"reading {self.model_path.name}/config.json")
            config = AutoConfig.from_pretrained(self.model_path, local_files_only=True, trust_remote_code=False)
            if config.model_type not in SUPPORTED_FAMILIES:
                raise ModelError(f"{self.model_path}: model type {config.model_type!r} is not supported")
            check(cancel)
            report(progress, "processor", 1, total, "tokenizer, image processor, chat template")
            processor = load_processor(self.model_path, self.family)
            check(cancel)
            report(progress, "weights", 2, total, f"{self.info.size_bytes / 2**30:.2f} GiB to {self.device}")
            kw: Dict[str, Any] = dict(config=config, dtype=self.dtype, local_files_only=True, use_safetensors=True,
                                      trust_remote_code=False)
            if self.device.startswith("cuda"):
                kw["device_map"] = {"": self.device}   # straight to the GPU, no full copy in host RAM
            # Any: transformers types .to() and the PEFT wrapper below as unrelated classes
            model: Any = AutoModelForImageTextToText.from_pretrained(self.model_path, **kw)
            if not self.device.startswith("cuda"):
                model = model.to(self.device)
            if self.adapter_path:
                check(cancel)
                report(progress, "adapter", 3, total, f"LoRA {self.adapter_path.name}")
                from peft import PeftModel

                with warnings.catch_warnings():  # peft calls a transformers API deprecated in 5.x
                    warnings.simplefilter("ignore", FutureWarning)
                    model = PeftModel.from_pretrained(model, str(self.adapter_path), is_trainable=False,
                                                      local_files_only=True)
            model.eval()
            check(cancel)
        except (CancelledError, ModelError):
            self._free()
            raise
        except torch.cuda.OutOfMemoryError as exc:
            self._free()
            raise ModelError(f"{self.model_path.name}: not enough GPU memory to load it ({exc})") from exc
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            self._free()
            raise ModelError(f"{self.model_path}: could not load the model ({type(exc).__name__}: {exc})") from exc
        self.model, self.processor = model, processor
        if self.decode_mode == "compiled":
            report(progress, "compile", total - 1, total, "compiling the decoding step (once per load)")
            self.decode_note = warm_up(self)
        report(progress, "ready", total, total, "model loaded")

    def _executor(self) -> ThreadPoolExecutor:
        # One long-lived generation thread: a fresh thread per answer costs a new OpenMP team and
        # measurably slows short answers on small CPUs.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sarlang-generate")
        return self._pool

    def _free(self) -> None:
        self.model = self.processor = None
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                # cuBLAS keeps a workspace per thread's handle (~32 MB each on Hopper) in the
                # caching allocator: drop those too, or "unloaded" still holds ~64 MB.
                clear = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
                if clear is not None:
                    clear()
                torch.cuda.empty_cache()
        except Exception:   # no torch, or a GPU already gone: nothing more to give back
            pass

    def unload(self) -> None:
        self._free()
        self.device_note = ""    # unloaded on purpose: no reload behind the user's back (require_loaded)

    # ------------------------------------------------------------ inputs
    def _messages(self, image, turns: Sequence[ChatTurn]) -> List[dict]:
        msgs, image_placed = [], image is None
        for t in turns:
            content = [{"type": "text", "text": t.text}]
            if t.role == "user" and not image_placed:
                content.insert(0, {"type": "image"})  # the image goes with the first user turn
                image_placed = True
            msgs.append({"role": t.role, "content": content})
        return msgs

    def prompt_text(self, image, turns: Sequence[ChatTurn]) -> str:
        """The templated prompt (image placeholders not yet expanded)."""
        self.require_loaded()
        return self.processor.apply_chat_template(self._messages(image, turns), add_generation_prompt=True,
                                                  tokenize=False)

    def prepare_inputs(self, image, turns: Sequence[ChatTurn]):
        """Model inputs (input_ids, attention_mask, pixel_values, image_grid_thw...) on the model's device."""
        import numpy as np
        from PIL import Image

        check_turns(turns)
        self.require_loaded()
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        if image is not None:
            if not isinstance(image, Image.Image):
                raise RequestError(f"the image must be a PIL image or a uint8 array, got {type(image).__name__}")
            image = image.convert("RGB")  # SAR quick-looks are often single-band 'L' or 'F'
        text = self.prompt_text(image, turns)
        inputs = self.processor(images=[image] if image is not None else None, text=[text], return_tensors="pt")
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        return inputs

    def generation_kwargs(self, config: GenerationConfig, stopping=None, inputs=None) -> Dict[str, Any]:
        """generate() arguments for ``config``: greedy when temperature == 0, else sampling; with
        ``inputs`` (the prompt), the KV cache and compilation of this backend's decoding mode."""
        import copy

        gc_ = copy.deepcopy(self.model.generation_config)
        gc_.max_new_tokens = config.max_new_tokens
        if config.temperature == 0:
            gc_.do_sample, gc_.temperature, gc_.top_p, gc_.top_k = False, None, None, None
        else:
            gc_.do_sample, gc_.temperature, gc_.top_p = True, config.temperature, config.top_p
            gc_.top_k = None
        if gc_.pad_token_id is None:
            gc_.pad_token_id = self.processor.tokenizer.pad_token_id
        if inputs is not None:
            rows, prompt_tokens = inputs["input_ids"].shape
            DecodePlan(self.decode_mode, self.device or "cpu").apply(gc_, prompt_tokens, rows)
        kw: Dict[str, Any] = {"generation_config": gc_}
        if stopping is not None:
            from transformers import StoppingCriteriaList

            kw["stopping_criteria"] = StoppingCriteriaList([stopping])
        return kw

    def require_loaded(self) -> None:
        """ModelError unless load() has run. After the GPU was lost, the model loads again on the CPU."""
        if not self.loaded and self.device_note and self.info is not None:
            self.load()
        if not self.loaded:
            raise ModelError(f"{self.model_path.name} is not loaded: call load() first")

    @staticmethod
    def _seed(config: GenerationConfig) -> None:
        import torch

        if config.seed is not None:
            torch.manual_seed(config.seed)  # seeds CUDA too

    # ------------------------------------------------------------ answers
    def stream(self, image, turns: Sequence[ChatTurn], config: GenerationConfig = GenerationConfig(), *,
               cancel: Optional[CancelToken] = None) -> Iterator[str]:
        """Text pieces as they are generated. Inputs are checked now (RequestError/ModelError at the
        call); generation starts at the first ``next``. Raises CancelledError when ``cancel`` fires."""
        inputs = self.prepare_inputs(image, turns)
        return self._stream(inputs, config, cancel)

    def _stream(self, inputs, config: GenerationConfig, cancel: Optional[CancelToken],
                timings: Optional[list] = None) -> Iterator[str]:
        check(cancel)
        streamer, stop, failure = TokenQueue(), threading.Event(), []
        kw = self.generation_kwargs(config, CancelCriteria(cancel, stop), inputs)

        def work() -> None:
            import torch

            try:
                self._seed(config)   # here, not at submit: answers queued on the one worker run in turn
                with torch.inference_mode():
                    self.model.generate(**inputs, **kw, streamer=streamer)
            except BaseException as exc:  # handed to the consumer thread
                failure.append(exc)
                streamer.end()

        decoder = IncrementalDecoder(self.processor.tokenizer)
        job = self._executor().submit(work)
        try:
            while True:
                item = streamer.q.get()
                batch = []
                while item is not END:
                    batch.append(item)
                    try:  # a consumer that fell behind decodes everything waiting at once
                        item = streamer.q.get_nowait()
                    except queue.Empty:
                        break
                ids = [i for b in batch for i in b[0]]
                piece = decoder.add(ids, final=item is END) if ids or item is END else ""
                if timings is not None:
                    now = time.perf_counter()
                    timings.extend((b[1], now) for b in batch)   # (produced, received) perf_counter
                if piece:
                    yield piece
                if item is END:
                    break
        finally:
            stop.set()      # also when the consumer walks away (generator closed)
            job.result()
        if failure:
            self._raise(failure[0])
        check(cancel)

    def generate_ids(self, inputs, config: GenerationConfig, cancel: Optional[CancelToken]):
        """``model.generate`` on prepared inputs (one or a batch): seeded, cancellable, errors typed."""
        import torch

        check(cancel)
        self._seed(config)
        try:
            with torch.inference_mode():
                out = self.model.generate(**inputs, **self.generation_kwargs(
                    config, CancelCriteria(cancel, threading.Event()), inputs))
        except Exception as exc:
            self._raise(exc)
        check(cancel)
        return out

    def _raise(self, exc: BaseException) -> None:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            raise OutOfMemoryError("out of GPU memory while answering: use a smaller image or fewer new "
                                   "tokens") from exc
        if is_device_lost(exc):     # only CUDA raises these: the model was on a GPU
            self._leave_gpu(exc)
            raise DeviceLostError(f"the GPU stopped working while answering ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0][:160]}); the model was unloaded from it and "
                                  + ("loads on the CPU (slower) with the next question" if self.info is not None
                                     else "must be loaded again")) from exc
        raise ModelError(f"generation failed ({type(exc).__name__}: {exc})") from exc

    def _leave_gpu(self, exc: BaseException) -> None:
        """Free what is left of the model and aim the next load at the CPU."""
        self.device_note = f"the GPU stopped working ({type(exc).__name__}); running on the CPU"
        self.model = self.processor = None     # the GPU's tensors are beyond use; the pool thread stays
        gc.collect()
        self._device_req, self._dtype_req = "cpu", "auto"

    def answer(self, image, turns: Sequence[ChatTurn], config: GenerationConfig = GenerationConfig(), *,
               cancel: Optional[CancelToken] = None) -> str:
        """The whole answer at once (plain generate, no streamer)."""

        inputs = self.prepare_inputs(image, turns)
        out = self.generate_ids(inputs, config, cancel)
        new = out[0, inputs["input_ids"].shape[1]:].tolist()
        return self.processor.tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def generate_batch(self, images: Sequence, turns_list: Sequence[Sequence[ChatTurn]],
                       config: GenerationConfig = GenerationConfig(), *,
                       cancel: Optional[CancelToken] = None) -> List[str]:
        """Answers to several (image, conversation) pairs in one left-padded ``generate`` (local_batch)."""
        from .local_batch import generate_batch
        return generate_batch(self, images, turns_list, config, cancel=cancel)

    # ------------------------------------------------------------ facts
    def identity(self) -> Dict[str, Any]:
        return {"backend": "local", "model": self.model_path.name, "model_path": str(self.model_path),
                "family": self.family, "adapter": self.adapter_path.name if self.adapter_path else None,
                "adapter_path": str(self.adapter_path) if self.adapter_path else None,
                "device": self.device or self._device_req,
                "decoding": self.decode_mode if self.loaded else (self._decode_req or "auto"),
                "decoding_note": self.decode_note, "device_note": self.device_note,
                "dtype": str(self.dtype).replace("torch.", "") if self.dtype is not None else str(self._dtype_req)}

    def model_input_size(self, width: int, height: int) -> tuple:
        """(width, height) the model sees: Qwen's smart_resize (sides multiples of patch x merge = 28,
        pixel count within the processor's min/max), or LLaVA's resize + centre crop."""
        return model_input_size(self.processor or load_processor(self.model_path, self.family), self.family,
                                width, height)

    def gpu_memory(self) -> Optional[Dict[str, float]]:
        """Allocated / reserved / peak MB on the model's GPU, or None on CPU."""
        return memory_report(self.device)

    def memory_meter(self) -> Optional[CudaMemoryMeter]:
        """Measures batches on the model's GPU (benchmark "auto" batch size), or None on CPU."""
        return memory_meter(self.device)
