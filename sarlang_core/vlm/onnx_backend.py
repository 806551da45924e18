"""OnnxBackend: an ONNX export (``sarlang-cli export-onnx``) run on ONNX Runtime, without torch.

    backend = OnnxBackend("models/qwen-onnx")          # picked by make_backend for such folders
    backend.load()
    for piece in backend.stream(image, [ChatTurn("user", "How many ships are there?")]):
        print(piece, end="")

The same VLMBackend protocol as LocalBackend (streaming, cancel between tokens, boxes through
``model_input_size``, regions cropped by the caller). Inputs are made in numpy (``onnx_inputs``),
then: vision graph -> image tokens placed over the prompt's image placeholders -> decoder over
the whole prompt (prefill) -> one decoder step per new token with the keys/values carried.

Providers: with ``device="auto"`` the CUDA provider when it really initialises (a session is made
and asked which providers it runs on), else the CPU, and ``provider_note`` says why;
``device="cuda"`` fails with that reason instead of falling back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from ..errors import CancelledError, ModelError, OutOfMemoryError, RequestError
from ..progress import CancelToken, ProgressCallback, check, report
from .backend import ChatTurn, GenerationConfig, check_turns
from .onnx_decoder import DecoderRunner
from .onnx_inputs import ImageSettings, image_patches, mrope_positions, render_prompt, vision_layout
from .onnx_manifest import OnnxManifest, describe_source, read_manifest
from .onnx_providers import SessionMaker
from .streaming import IncrementalDecoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prompt:
    """One conversation made ready for the graphs."""
    input_ids: np.ndarray            # (1, L) int64, image placeholders expanded
    token_types: np.ndarray          # (1, L) int64: 1 on image tokens
    pixels: Optional[np.ndarray]     # (patches, C*T*P*P) float32, or None without an image
    grid: Optional[tuple]            # (grid_h, grid_w) in patches


class _Tokenizer:
    """tokenizers.Tokenizer with the decode signature IncrementalDecoder calls."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(path))

    def encode(self, text: str) -> List[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids, skip_special_tokens: bool = True, clean_up_tokenization_spaces: bool = False) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=skip_special_tokens)


class OnnxBackend:
    """VLMBackend over an ONNX export folder."""

    def __init__(self, folder: Union[str, Path], *, device: str = "auto") -> None:
        if device not in ("auto", "cpu", "cuda"):
            raise ModelError(f"device must be auto, cpu or cuda; got {device!r}")
        self.manifest: OnnxManifest = read_manifest(Path(folder).expanduser())
        self.model_path = self.manifest.folder
        self.family = self.manifest.family
        self.adapter_path = None      # merged into the export
        self._device_req = device
        self.device: Optional[str] = None
        self.provider_note: Optional[str] = None
        self.settings = ImageSettings.from_config(self.manifest.image)
        self._sessions: Dict[str, Any] = {}
        self._tokenizer: Optional[_Tokenizer] = None
        self._template = ""

    # ------------------------------------------------------------ lifecycle
    @property
    def loaded(self) -> bool:
        return bool(self._sessions)

    def load(self, *, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None) -> None:
        if self.loaded:
            return
        try:
            maker = SessionMaker(self._device_req)
        except ImportError as exc:
            raise ModelError(f"ONNX Runtime is not installed ({exc}): install onnxruntime-gpu") from exc
        sessions: Dict[str, Any] = {}
        for i, name in enumerate(("vision", "embed", "decoder")):
            check(cancel)
            report(progress, name, i, 4, f"{name}.onnx on {maker.device}")
            sessions[name] = maker.session(self.manifest.graph(name))
        report(progress, "text", 3, 4, "tokenizer and chat template")
        self._tokenizer = _Tokenizer(self.model_path / "tokenizer.json")
        self._template = (self.model_path / "chat_template.jinja").read_text(encoding="utf-8")
        self._sessions, self.device, self.provider_note = sessions, maker.device, maker.note
        if maker.note:
            log.warning("%s: %s", self.model_path.name, maker.note)
        report(progress, "ready", 4, 4, f"model loaded ({self.device})")

    def unload(self) -> None:
        self._sessions, self._tokenizer = {}, None

    def require_loaded(self) -> None:
        if not self.loaded:
            raise ModelError(f"{self.model_path.name} is not loaded: call load() first")

    # ------------------------------------------------------------ inputs
    @staticmethod
    def _messages(image, turns: Sequence[ChatTurn]) -> List[dict]:
        msgs, placed = [], image is None
        for t in turns:
            content: List[dict] = [{"type": "text", "text": t.text}]
            if t.role == "user" and not placed:
                content.insert(0, {"type": "image"})   # the image goes with the first user turn
                placed = True
            msgs.append({"role": t.role, "content": content})
        return msgs

    def prepare(self, image, turns: Sequence[ChatTurn]) -> Prompt:
        """Token ids (image placeholders expanded to the image's token count) and pixel patches."""
        check_turns(turns)
        self.require_loaded()
        assert self._tokenizer is not None
        text = render_prompt(self._template, self._messages(image, turns))
        pixels, grid = (None, None) if image is None else image_patches(image, self.settings)
        ids = np.asarray(self._tokenizer.encode(text), dtype=np.int64)
        image_id = int(self.manifest.tokens["image"])
        if grid is not None:
            at = np.flatnonzero(ids == image_id)
            if len(at) != 1:
                raise ModelError(f"the chat template placed {len(at)} image placeholders; one was expected")
            n = grid[0] * grid[1] // self.settings.merge_size ** 2
            ids = np.concatenate([ids[:at[0]], np.full(n, image_id, dtype=np.int64), ids[at[0] + 1:]])
        types = (ids == image_id).astype(np.int64) if grid is not None else np.zeros_like(ids)
        return Prompt(ids[None, :], types[None, :], pixels, grid)

    def _image_tokens(self, prompt: Prompt) -> np.ndarray:
        assert prompt.pixels is not None and prompt.grid is not None
        v = self.manifest.vision
        lay = vision_layout(prompt.grid[0], prompt.grid[1], v["merge_size"], v["window_size"], v["patch_size"])
        return self._sessions["vision"].run(None, {"pixel_values": prompt.pixels, "position_ids": lay.position_ids,
                                                   "window_index": lay.window_index,
                                                   "window_ids": lay.window_ids})[0]

    def _embeddings(self, prompt: Prompt) -> np.ndarray:
        embeds = self._sessions["embed"].run(None, {"input_ids": prompt.input_ids})[0]
        if prompt.grid is not None:
            embeds[0, prompt.token_types[0] == 1] = self._image_tokens(prompt)
        return embeds

    # ------------------------------------------------------------ the decoder
    def _decoder(self) -> DecoderRunner:
        t = self.manifest.text
        return DecoderRunner(self._sessions["decoder"], self.device or "cpu", layers=t["layers"],
                             kv_heads=t["kv_heads"], head_dim=t["head_dim"])

    def prefill_logits(self, prompt: Prompt) -> np.ndarray:
        """The next-token logits after the prompt (the export's check against torch uses it)."""
        self.require_loaded()
        positions, _ = mrope_positions(prompt.input_ids, int(self.manifest.tokens["image"]), prompt.grid,
                                       self.settings.merge_size)
        return self._decoder().step(self._embeddings(prompt), positions)

    def generate_ids(self, prompt: Prompt, config: GenerationConfig,
                     cancel: Optional[CancelToken] = None) -> Iterator[int]:
        """New token ids, one at a time (greedy at temperature 0, else seeded nucleus sampling);
        stops at an end-of-turn token, at max_new_tokens, or raises CancelledError between tokens."""
        check(cancel)
        self.require_loaded()
        positions, delta = mrope_positions(prompt.input_ids, int(self.manifest.tokens["image"]), prompt.grid,
                                           self.settings.merge_size)
        rng = np.random.default_rng(config.seed)
        eos = set(self.manifest.eos_ids)
        try:
            decoder = self._decoder()
            logits = decoder.step(self._embeddings(prompt), positions)
            for _ in range(config.max_new_tokens):
                check(cancel)
                token = _pick(logits, config, rng)
                if token in eos:
                    return
                yield token
                embeds = self._sessions["embed"].run(None, {"input_ids": np.array([[token]], dtype=np.int64)})[0]
                pos = np.full((3, 1, 1), decoder.length + delta, dtype=np.int64)
                logits = decoder.step(embeds, pos)
        except CancelledError:
            raise
        except Exception as exc:   # onnxruntime raises its own exception classes
            raise _model_error(exc) from exc

    # ------------------------------------------------------------ answers
    def stream(self, image, turns: Sequence[ChatTurn], config: GenerationConfig = GenerationConfig(), *,
               cancel: Optional[CancelToken] = None) -> Iterator[str]:
        """Text pieces as they are generated; inputs are checked now, generation starts at ``next``."""
        prompt = self.prepare(image, turns)
        return self._stream(prompt, config, cancel)

    def _stream(self, prompt: Prompt, config: GenerationConfig, cancel: Optional[CancelToken]) -> Iterator[str]:
        assert self._tokenizer is not None
        decoder = IncrementalDecoder(self._tokenizer)
        for token in self.generate_ids(prompt, config, cancel):
            piece = decoder.add([token])
            if piece:
                yield piece
        tail = decoder.add([], final=True)
        if tail:
            yield tail

    def answer(self, image, turns: Sequence[ChatTurn], config: GenerationConfig = GenerationConfig(), *,
               cancel: Optional[CancelToken] = None) -> str:
        prompt = self.prepare(image, turns)
        assert self._tokenizer is not None
        return self._tokenizer.decode(list(self.generate_ids(prompt, config, cancel)))

    def generate_batch(self, images: Sequence, turns_list: Sequence[Sequence[ChatTurn]],
                       config: GenerationConfig = GenerationConfig(), *,
                       cancel: Optional[CancelToken] = None) -> List[str]:
        """One answer after another (the graphs take one conversation at a time)."""
        if len(images) != len(turns_list):
            raise RequestError(f"{len(images)} images for {len(turns_list)} conversations")
        return [self.answer(im, turns, config, cancel=cancel) for im, turns in zip(images, turns_list)]

    # ------------------------------------------------------------ facts
    def identity(self) -> Dict[str, Any]:
        src = self.manifest.source
        return {"backend": "onnxruntime", "model": self.model_path.name, "model_path": str(self.model_path),
                "family": self.family, "adapter": src.get("adapter"), "exported_from": describe_source(self.manifest),
                "device": self.device or self._device_req, "dtype": self.manifest.data.get("dtype", "float32"),
                "provider_note": self.provider_note}

    def model_input_size(self, width: int, height: int) -> tuple:
        if width < 1 or height < 1:
            raise RequestError(f"image size must be positive, got {width} x {height}")
        return self.settings.resized(width, height)


def _pick(logits: np.ndarray, config: GenerationConfig, rng: np.random.Generator) -> int:
    if config.temperature == 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / config.temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    if config.top_p < 1.0:
        order = np.argsort(-p)
        keep = order[: int(np.searchsorted(np.cumsum(p[order]), config.top_p)) + 1]
        q = np.zeros_like(p)
        q[keep] = p[keep]
        p = q / q.sum()
    return int(rng.choice(len(p), p=p))


def _model_error(exc: BaseException) -> ModelError:
    text = str(exc)
    if "out of memory" in text.lower() or "failed to allocate memory" in text.lower():
        return OutOfMemoryError("out of GPU memory while answering: use a smaller image or fewer new tokens, or run "
                          "on the CPU (device cpu)")
    return ModelError(f"ONNX Runtime failed while answering ({type(exc).__name__}: {text})")
