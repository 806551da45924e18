"""The training engine: transformers' Trainer + PEFT LoRA on a local Qwen2.5-VL, Qwen2-VL or LLaVA-1.5.

    summary = train(run_dir, config, pipeline_json, emit=print_json)     # a new run
    summary = train(run_dir, resume=True, emit=print_json)               # continue from the last checkpoint

One GPU (or the CPU) by default; several GPUs and machines when started by ``torchrun`` or
``accelerate launch`` (the Trainer runs DDP from their environment; DeepSpeed ZeRO-2/3 with
``config.deepspeed`` when DeepSpeed is installed). Only rank 0 writes the run folder.

A graceful stop (RUN/STOP, SIGTERM, Ctrl+C, a CancelToken) saves a checkpoint at the end of the
current optimizer step; resume restores adapter, optimizer, scheduler, RNG and data position, so a
resumed run gives the same losses and adapter as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from ..atomic import plain_permissions, write_text_atomic
from ..errors import CancelledError, ModelError, TrainError
from ..progress import CancelToken
from ..variant import require_full
from . import runs
from .config import TrainConfig
from .data import load_samples
from .plan import Planned, plan_samples, resolve_model
from .trainer_parts import (
    EventsCallback,
    StopCallback,
    TrainDataset,
    build_image_loader,
    trainer_class,
    training_arguments,
)

Emit = Callable[[dict], None]
log = logging.getLogger(__name__)
VISION_WARNING = ("LoRA on the vision tower: vLLM ignores LoRA weights on the vision encoder, so serve this adapter "
                  "merged (`sarlang-cli train merge`) or in this app, not as a vLLM LoRA")


def _rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def _device_kind() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _precision(config: TrainConfig) -> str:
    import torch

    if config.precision != "auto":
        if config.precision in ("bf16", "fp16") and not torch.cuda.is_available():
            raise TrainError(f"{config.precision} training needs a CUDA GPU; this machine has none (use fp32 or auto)")
        return config.precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def _lora_targets(config: TrainConfig, family: str) -> str:
    """All linear layers of the language model (and of the vision tower when asked)."""
    lm = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
    if not config.train_vision:
        return lm
    # The blocks' and the merger's linear layers, not the patch embedding (a Conv3d named "proj"
    # too, which the old ".*visual.*proj" pattern caught).
    blocks = r"blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(fc1|fc2|gate_proj|up_proj|down_proj))"
    vision = (rf".*visual\.({blocks}|merger\.mlp\.(0|2))" if family != "llava"
              else r".*(vision_tower.*\.(q_proj|k_proj|v_proj|out_proj|fc1|fc2)|multi_modal_projector\.linear_\d)")
    return f"({lm})|({vision})"


def load_trainable_model(model_path: Path, config: TrainConfig, family: str, precision: str):
    """The base model with a fresh LoRA (trainable params in float32), on the training device."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model: Any   # transformers and PEFT type their models as unrelated classes
    try:
        model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype, local_files_only=True,
                                                            use_safetensors=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"{model_path}: could not load the model ({type(exc).__name__}: {exc})") from exc
    model.config.use_cache = False
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=_lora_targets(config, family), task_type="CAUSAL_LM")
    with warnings.catch_warnings():   # peft calls a transformers API deprecated in 5.x
        warnings.simplefilter("ignore", FutureWarning)
        torch.manual_seed(config.seed)   # LoRA A matrices: the same for the same seed
        model = get_peft_model(model, lora)
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model


def _read_run(run_dir: Path):
    if not (run_dir / runs.CONFIG).is_file():
        raise TrainError(f"{run_dir}: not a training run (no {runs.CONFIG})")
    config = TrainConfig.load(run_dir / runs.CONFIG)
    try:
        pipeline_json = json.loads((run_dir / runs.PIPELINE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrainError(f"{run_dir / runs.PIPELINE}: cannot be read ({exc})") from None
    if runs.read_state(run_dir).get("status") == "finished":
        raise TrainError(f"{run_dir}: the run has finished; its adapter is in {run_dir / runs.ADAPTER}")
    return config, pipeline_json


def _check_new_folder(run_dir: Path) -> None:
    if (run_dir / runs.CONFIG).exists():
        raise TrainError(f"{run_dir}: already holds a run; resume it (`sarlang-cli train resume {run_dir}`) "
                         "or choose another folder")
    if run_dir.exists() and any(p.name != runs.LOCK for p in run_dir.iterdir()):
        raise TrainError(f"{run_dir}: the folder is not empty; choose a new folder for the run")


def train(run_dir: Any, config: Optional[TrainConfig] = None, pipeline_json: Any = None, *, resume: bool = False,
          emit: Optional[Emit] = None, cancel: Optional[CancelToken] = None) -> Dict[str, Any]:
    """Run (or resume) the training in ``run_dir``; return the final state. TrainError / ModelError
    for what a person must change. A new run whose model or data is unusable writes nothing; once a
    run has started, its state says "failed" (or "stopped") with the same message."""
    require_full("fine-tuning", TrainError)
    run_dir = Path(run_dir).expanduser().resolve()
    main = _rank() == 0
    say: Emit = (emit if main else None) or (lambda _e: None)   # one event stream: rank 0's
    existed = run_dir.exists()
    lock = runs.RunLock(run_dir).acquire() if main else None
    started = resume
    try:
        if resume or not main:
            config, pipeline_json = _read_run(run_dir) if resume else \
                (config or TrainConfig.load(run_dir / runs.CONFIG), pipeline_json)
        else:
            assert config is not None, "a new run needs a TrainConfig"
            _check_new_folder(run_dir)
        prepared = _prepare(run_dir, config, say)
        if main and not resume:
            write_text_atomic(run_dir / runs.CONFIG, json.dumps(config.to_dict(), indent=2))
            write_text_atomic(run_dir / runs.PIPELINE, json.dumps(pipeline_json, indent=2))
        started = True
        runs.clear_stop(run_dir)
        if main:
            runs.remove_incomplete_checkpoints(run_dir)
        previous = runs.checkpoints(run_dir)
        last = previous[-1] if resume and previous else None
        if main:
            runs.write_state(run_dir, "running", step=runs.checkpoint_step(last) if last else 0, message="starting")
        return _fit(run_dir, config, pipeline_json, prepared, last, say, cancel, main)
    except BaseException as exc:
        message = _failure_text(exc)
        if main and started:
            ckpts = runs.checkpoints(run_dir)
            status = "stopped" if isinstance(exc, (CancelledError, KeyboardInterrupt)) else "failed"
            runs.write_state(run_dir, status, step=runs.checkpoint_step(ckpts[-1]) if ckpts else 0, message=message,
                             resumable=bool(ckpts))
        if _is_oom(exc) or (isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)):
            raise TrainError(message) from exc
        raise
    finally:
        if lock is not None:
            lock.release()
            if not started:   # nothing was written: leave no trace of the attempt
                (run_dir / runs.LOCK).unlink(missing_ok=True)
                if not existed:
                    try:
                        run_dir.rmdir()
                    except OSError:
                        pass


def _is_oom(exc: BaseException) -> bool:
    try:
        import torch

        return isinstance(exc, torch.OutOfMemoryError)
    except (ImportError, AttributeError):
        return False


def _failure_text(exc: BaseException) -> str:
    if _is_oom(exc):
        return ("out of GPU memory: use smaller images (image_max_pixels), batch size 1 with more gradient "
                "accumulation, or gradient checkpointing; the run can be resumed from its last checkpoint")
    if isinstance(exc, OSError):
        return (f"could not write the run folder ({exc.strerror or exc}); the last complete checkpoint is kept "
                "and the run can be resumed once there is room")
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return str(exc) or type(exc).__name__


@dataclass
class Prepared:
    model_path: Path
    family: str
    processor: Any
    planned: Planned
    evaluation: Optional[Planned]
    precision: str


def _prepare(run_dir: Path, config: TrainConfig, say: Emit) -> Prepared:
    """Model folder, processor and the planned samples: everything that can be refused before a run
    folder is written."""
    from transformers.utils import logging as hf_logging

    from ..vlm.processors import load_processor

    hf_logging.disable_progress_bar()
    say({"event": "progress", "stage": "data", "message": "reading the dataset"})
    model_path, family = resolve_model(config.model)
    processor = load_processor(model_path, family)
    planned = plan_samples(processor, family, config, load_samples(config))
    evaluation: Optional[Planned] = None
    if config.eval_split and config.eval_every:
        evaluation = plan_samples(processor, family, config, load_samples(config, split=config.eval_split))
    say({"event": "progress", "stage": "data", "message": planned.describe()})
    return Prepared(model_path, family, processor, planned, evaluation, _precision(config))


def _fit(run_dir: Path, config: TrainConfig, pipeline_json: Any, prep: Prepared, last: Optional[Path], say: Emit,
         cancel: Optional[CancelToken], main: bool) -> Dict[str, Any]:
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    model_path, family, processor, planned, evaluation, precision = (
        prep.model_path, prep.family, prep.processor, prep.planned, prep.evaluation, prep.precision)
    if main:
        write_text_atomic(run_dir / runs.DATA, json.dumps({"train": planned.summary(), "eval": evaluation.summary()
                                                           if evaluation else None}, indent=2))
    if config.train_vision:
        log.warning(VISION_WARNING)
        say({"event": "progress", "stage": "warning", "message": VISION_WARNING})
    say({"event": "progress", "stage": "model", "message": f"loading {model_path.name} ({precision})"})
    model = load_trainable_model(model_path, config, family, precision)
    loader = build_image_loader(pipeline_json, run_dir / "image_cache")
    train_set = TrainDataset(planned, loader)
    eval_set = TrainDataset(evaluation, loader) if evaluation else None
    args = training_arguments(config, run_dir, precision, has_eval=eval_set is not None)
    stop = StopCallback(run_dir, cancel)
    events = EventsCallback(run_dir, config, say, write=main)
    pad = processor.tokenizer.pad_token_id
    from .encode import Collator

    trainer = trainer_class()(model=model, args=args, train_dataset=train_set, eval_dataset=eval_set,
                              data_collator=Collator(pad if pad is not None else 0), callbacks=[stop, events])
    for chatty in (PrinterCallback, ProgressCallback):   # stdout is for JSON lines; we report progress ourselves
        trainer.remove_callback(chatty)
    if last is not None and main:
        runs.trim_events(run_dir, runs.checkpoint_step(last))
        say({"event": "progress", "stage": "resume", "message": f"resuming from {last.name}"})
    with _stop_on_signals(stop):
        events.open()
        try:
            trainer.train(resume_from_checkpoint=str(last) if last else None)
        finally:
            events.close()
    step = trainer.state.global_step
    if stop.stopped:
        if main:
            runs.write_state(run_dir, "stopped", step=step, max_steps=trainer.state.max_steps,
                             message=f"stopped at step {step}; resume continues from checkpoint-{step}",
                             resumable=True)
        say({"event": "stopped", "step": step})
        return runs.read_state(run_dir) if main else {"status": "stopped", "step": step}
    _save_adapter(trainer, run_dir, config, pipeline_json, model_path, planned, step, main)
    if main:
        runs.write_state(run_dir, "finished", step=step, max_steps=trainer.state.max_steps,
                         message=f"finished after {step} steps", adapter=str(run_dir / runs.ADAPTER))
    say({"event": "done", "step": step, "adapter": str(run_dir / runs.ADAPTER)})
    # another rank cannot read the outcome from the folder: rank 0 may not have written it yet
    return runs.read_state(run_dir) if main else {"status": "finished", "step": step}


def _save_adapter(trainer: Any, run_dir: Path, config: TrainConfig, pipeline_json: Any, model_path: Path,
                  planned: Planned, step: int, main: bool) -> None:
    """The final adapter, written to a temporary folder and renamed into place. Every rank calls
    the Trainer's save (under DeepSpeed ZeRO-3 the weights are gathered from all of them); rank 0
    writes."""
    final = run_dir / runs.ADAPTER
    tmp = run_dir / ".adapter.tmp"
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
    try:
        trainer.save_model(str(tmp))
        if not main:
            return
        (tmp / "training_args.bin").unlink(missing_ok=True)   # a pickle of the arguments: config.json says it all
        cfg_path = tmp / "adapter_config.json"
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        cfg["base_model_name_or_path"] = str(model_path)
        write_text_atomic(cfg_path, json.dumps(cfg, indent=2))
        provenance = {"base": str(model_path), "run": str(run_dir), "steps": step, "config": config.to_dict(),
                      "pipeline": pipeline_json, "data": planned.summary(),
                      "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_text_atomic(tmp / "sarlang_train.json", json.dumps(provenance, indent=2))
        plain_permissions(tmp)   # safetensors writes owner-only files
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise


class _stop_on_signals:
    """SIGTERM and the first Ctrl+C ask for a graceful stop (main thread only; a second Ctrl+C
    interrupts at once)."""

    def __init__(self, stop: StopCallback) -> None:
        self.stop = stop
        self._old: Dict[int, Any] = {}

    def __enter__(self) -> "_stop_on_signals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.stop.requested:
            raise KeyboardInterrupt
        self.stop.requested = True

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
