"""The pieces the engine hands to transformers' Trainer: dataset, arguments, callbacks, image loader."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from ..atomic import plain_permissions
from ..errors import TrainError
from ..progress import CancelToken
from . import runs
from .config import TrainConfig

try:
    from transformers import TrainerCallback
except ImportError:   # pragma: no cover - transformers is a dependency
    TrainerCallback = object   # type: ignore[misc,assignment]


# ------------------------------------------------------------------ images
def build_image_loader(pipeline_json: Any, cache_dir: Path) -> Callable[[str], Any]:
    """path -> PIL image, through the run's Pipeline (null: the file as stored). Preprocessed
    images are cached as PNG in the run folder: later epochs and resumed runs read them back."""
    from PIL import Image

    if pipeline_json is None:
        def as_stored(path: str):
            with Image.open(path) as im:
                return im.convert("RGB")
        return as_stored

    from ..preprocess.pipeline import Pipeline
    from ..services.model_input import render_file

    pipeline = Pipeline.from_dict(pipeline_json)
    key = hashlib.sha1(json.dumps(pipeline_json, sort_keys=True).encode()).hexdigest()[:12]

    def preprocessed(path: str):
        st = os.stat(path)
        name = hashlib.sha1(f"{key}|{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
        cached = cache_dir / f"{name}.png"
        if cached.is_file():
            try:
                with Image.open(cached) as im:
                    return im.convert("RGB")
            except OSError:
                pass   # a torn cache file: render again
        image = render_file(path, pipeline)
        from ..atomic import atomic_output

        cache_dir.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_output(cached) as tmp:
                image.save(tmp, format="PNG")
        except OSError:
            pass   # no room for the cache: train on, rendering each time
        return image.convert("RGB")
    return preprocessed


class TrainDataset:
    """Encoded samples, their images read when asked for (a torch map-style dataset)."""

    def __init__(self, planned: Any, loader: Callable[[str], Any]) -> None:
        self.planned, self.loader = planned, loader

    def __len__(self) -> int:
        return len(self.planned.samples)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        sample = self.planned.samples[i]
        try:
            image = self.loader(sample.image)
        except FileNotFoundError:
            raise TrainError(f"{sample.image}: image missing (it was there when the run started)") from None
        return self.planned.encoder.encode(sample, image)


# ------------------------------------------------------------------ arguments
DEEPSPEED_CONFIGS: Dict[str, Dict[str, Any]] = {
    "zero2": {"zero_optimization": {"stage": 2, "overlap_comm": True, "contiguous_gradients": True,
                                    "allgather_bucket_size": 5e8, "reduce_bucket_size": "auto"}},
    "zero3": {"zero_optimization": {"stage": 3, "overlap_comm": True, "contiguous_gradients": True,
                                    "stage3_gather_16bit_weights_on_model_save": True}},
}


def _deepspeed(config: TrainConfig, precision: str) -> Optional[dict]:
    if config.deepspeed == "none":
        return None
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        raise TrainError("DeepSpeed is not installed: `pip install deepspeed` (on a CUDA machine), or set "
                         "deepspeed to none") from None
    ds: Dict[str, Any] = {"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto",
                          "gradient_accumulation_steps": "auto", "gradient_clipping": "auto",
                          "bf16": {"enabled": "auto"}, "fp16": {"enabled": "auto"}}
    ds.update(DEEPSPEED_CONFIGS[config.deepspeed])
    return ds


def training_arguments(config: TrainConfig, run_dir: Path, precision: str, *, has_eval: bool):
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(run_dir / runs.CHECKPOINTS), per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate, num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps > 0 else -1, lr_scheduler_type=config.scheduler,
        warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm,
        logging_steps=1, save_strategy="steps", save_steps=config.save_every, save_total_limit=config.keep_checkpoints,
        eval_strategy="steps" if has_eval else "no", eval_steps=config.eval_every if has_eval else None,
        bf16=precision == "bf16", fp16=precision == "fp16", seed=config.seed, data_seed=config.seed,
        report_to=[], disable_tqdm=True, remove_unused_columns=False, use_cpu=not cuda,
        dataloader_num_workers=min(4, max(0, (os.cpu_count() or 1) // 2)) if cuda else 0,
        # tokens are counted by LoraTrainer (no GPU sync per micro-batch), not by the Trainer
        dataloader_pin_memory=cuda, include_num_input_tokens_seen="no",
        ddp_find_unused_parameters=False, deepspeed=_deepspeed(config, precision))


# ------------------------------------------------------------------ the trainer
_TRAINER: Dict[str, type] = {}


def trainer_class() -> type:
    """transformers' Trainer without two per-micro-batch costs (made on first use: importing the
    Trainer is slow):

    * the Trainer's own token count (``include_num_input_tokens_seen``) calls ``.item()`` on every
      micro-batch, a GPU sync that stalls the CPU from queueing the next one; here the real
      (attention-mask) tokens are summed on the device and read once per logged step, where the
      loss is read anyway. ``state.num_input_tokens_seen`` holds the same numbers as before.
    * ``floating_point_ops`` walks every module to count the parameters on every micro-batch (a
      few ms on a 3B model); the count is taken once. ``total_flos`` is unchanged.
    """
    if "trainer" in _TRAINER:
        return _TRAINER["trainer"]
    from transformers import Trainer

    class LoraTrainer(Trainer):
        _params: Optional[int] = None
        _pending: Any = None

        def floating_point_ops(self, inputs: Dict[str, Any]) -> int:
            model: Any = self.model
            ids = inputs.get(getattr(model, "main_input_name", "input_ids"))
            if ids is None:
                return 0
            mask = inputs.get("attention_mask")
            seen = mask.sum() if mask is not None else ids.numel()
            self._pending = seen if self._pending is None else self._pending + seen
            if not hasattr(model, "num_parameters"):
                return 0
            if self._params is None:
                self._params = int(model.num_parameters(exclude_embeddings=True))
            return 6 * ids.numel() * self._params

        def log(self, logs: Dict[str, float], *args: Any, **kwargs: Any) -> None:
            self.count_tokens()
            super().log(logs, *args, **kwargs)

        def count_tokens(self) -> None:
            """Move the tokens counted since the last call into ``state.num_input_tokens_seen``
            (summed over the ranks, as the Trainer's own count is)."""
            if self._pending is None:
                return
            import torch

            seen = torch.as_tensor(self._pending, device=self.args.device, dtype=torch.int64)
            self._pending = None
            self.state.num_input_tokens_seen += int(self.accelerator.gather(seen).sum().item())

    _TRAINER["trainer"] = LoraTrainer
    return LoraTrainer


# ------------------------------------------------------------------ callbacks
class StopCallback(TrainerCallback):
    """Ends training after the current optimizer step, with a checkpoint, when asked (RUN/STOP, a
    signal through ``requested``, the CancelToken)."""

    def __init__(self, run_dir: Path, cancel: Optional[CancelToken]) -> None:
        self.run_dir, self.cancel = run_dir, cancel
        self.requested = False
        self.stopped = False

    def on_step_end(self, args, state, control, **kwargs):
        asked = self.requested or runs.stop_requested(self.run_dir) or (
            self.cancel is not None and self.cancel.cancelled)
        if args.world_size > 1:
            asked = _any_rank(asked, args.device)   # every rank stops at the same step, or DDP hangs
        if asked:
            if state.global_step < state.max_steps:
                self.stopped = True
                control.should_save = True
                control.should_training_stop = True
        return control


def _any_rank(flag: bool, device: Any) -> bool:
    import torch
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


class EventsCallback(TrainerCallback):
    """One event per optimizer step (loss, lr, grad norm, epoch, tokens/s, samples/s, GPU memory,
    ETA) into RUN/events.jsonl and to ``say`` (JSON lines for the GUI)."""

    def __init__(self, run_dir: Path, config: TrainConfig, say: Callable[[dict], None], *, write: bool) -> None:
        self.run_dir, self.config, self.say, self.write = run_dir, config, say, write
        self.log: Optional[runs.EventLog] = None
        self._t0 = self._t = 0.0
        self._tokens = 0
        self._step0 = self._step = 0

    def open(self) -> None:
        if self.write:
            self.log = runs.EventLog(self.run_dir)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0 = self._t = time.perf_counter()
        self._tokens = state.num_input_tokens_seen
        self._step0 = self._step = state.global_step
        self.say({"event": "start", "step": state.global_step, "max_steps": state.max_steps,
                  "world_size": args.world_size})

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        now = time.perf_counter()
        if "eval_loss" in logs:
            self._emit({"event": "eval", "step": state.global_step, "epoch": _round(state.epoch),
                        "eval_loss": _round(logs["eval_loss"])})
            return
        if "loss" not in logs:
            return
        steps = max(1, state.global_step - self._step)
        dt = max(now - self._t, 1e-9)
        tokens = state.num_input_tokens_seen - self._tokens
        per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        done = state.global_step - self._step0
        eta = (now - self._t0) / done * (state.max_steps - state.global_step) if done else None
        event = {"event": "step", "step": state.global_step, "max_steps": state.max_steps,
                 "epoch": _round(state.epoch), "loss": _round(logs.get("loss")),
                 "lr": logs.get("learning_rate"), "grad_norm": _round(logs.get("grad_norm")),
                 "tokens_per_s": round(tokens / dt, 1), "samples_per_s": round(steps * per_step / dt, 3),
                 "step_time_s": round(dt / steps, 4), "gpu_mem_gb": _gpu_memory(),
                 "eta_s": round(eta, 1) if eta is not None else None, "time": time.time()}
        self._t, self._tokens, self._step = now, state.num_input_tokens_seen, state.global_step
        self._emit(event)

    def _emit(self, event: dict) -> None:
        if self.log is not None:
            self.log.write(event)
        self.say(event)

    def on_save(self, args, state, control, **kwargs):
        if self.write:
            ckpt = self.run_dir / runs.CHECKPOINTS / f"checkpoint-{state.global_step}"
            if ckpt.is_dir():
                plain_permissions(ckpt)   # safetensors writes owner-only files
            runs.write_state(self.run_dir, "running", step=state.global_step, max_steps=state.max_steps,
                             message=f"checkpoint-{state.global_step} saved")
        self.say({"event": "checkpoint", "step": state.global_step})


def _round(x: Any) -> Any:
    if isinstance(x, float):
        return x if not math.isfinite(x) else round(x, 6)
    return x


def _gpu_memory() -> Optional[float]:
    import torch

    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 3)

