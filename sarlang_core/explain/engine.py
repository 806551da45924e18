"""Per-word maps for one answer: one forward pass over prompt + answer, one backward per word.

    result = explain_answer(model, processor, "qwen2_5_vl", inputs, answer_ids, method="gradcam")
    for w in result.words:
        print(w.text, w.peak, w.scores.shape)      # scores in [0, 1] on the method's grid

``inputs`` are the processor's outputs for the prompt (as ``LocalBackend.prepare_inputs`` gives
them), ``answer_ids`` the answer's token ids: generated, or a given text tokenised (teacher
forcing). The graph of the forward pass is kept while the words are walked and freed after.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import CancelledError, ExplainError
from ..progress import CancelToken, ProgressCallback, check, report
from ..variant import require_full
from .hooks import eager_attention, hf_model, visual_tokens
from .layout import VisualLayout, layout_for
from .methods import Method, Pass, method
from .words import Word, answer_words

OOM_ADVICE = "out of GPU memory while computing the maps: ask again with a smaller pixel budget or a shorter answer"


@dataclass(frozen=True)
class WordMap:
    word: Word
    scores: np.ndarray                # float32 (rows, cols) in [0, 1]: the map / its peak
    peak: float                       # the map's peak before normalising (compare words of one answer)
    peak_cell: Tuple[int, int]        # (row, col) of the peak

    @property
    def text(self) -> str:
        return self.word.text


@dataclass(frozen=True)
class Explanation:
    answer: str
    method: str
    words: List[WordMap]
    all_words: List[Word]             # every word of the answer (the maps may cover a subset)
    grid: Tuple[int, int]             # (rows, cols) of the maps
    image_size: Tuple[int, int]       # (width, height) of the image the processor was given
    covered: Tuple[float, float, float, float]   # the grid's rectangle in that image (x0, y0, x1, y1)
    answer_ids: List[int] = field(default_factory=list)

    def word(self, text_or_index: Any) -> WordMap:
        """A word's map by its index among the answer's words or by its text (first match)."""
        for w in self.words:
            if w.word.index == text_or_index or (isinstance(text_or_index, str)
                                                 and w.text.lower() == text_or_index.lower()):
                return w
        raise ExplainError(f"{text_or_index!r} is not among the explained words "
                           f"({', '.join(w.text for w in self.words)})")


def select_words(words: Sequence[Word], wanted: Optional[Sequence[str]]) -> List[Word]:
    """``wanted`` None or "all": every word; else those words (case-insensitive, every occurrence)."""
    if not wanted or list(wanted) == ["all"]:
        return list(words)
    lower = {w.lower().strip() for w in wanted if w.strip()}
    missing = sorted(lower - {w.text.lower() for w in words})
    if missing:
        raise ExplainError(f"not in the answer: {', '.join(missing)} (its words: "
                           f"{', '.join(dict.fromkeys(w.text for w in words))})")
    return [w for w in words if w.text.lower() in lower]


def _sequence(inputs: Any, answer: Any) -> dict:
    """Model arguments for prompt + answer (teacher forcing)."""
    import torch

    ids = torch.cat([inputs["input_ids"], answer[None]], dim=1)
    args = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
    args["input_ids"] = ids
    args["attention_mask"] = torch.ones_like(ids)
    if "mm_token_type_ids" in inputs:
        pad = torch.zeros((1, answer.numel()), dtype=inputs["mm_token_type_ids"].dtype, device=ids.device)
        args["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], pad], dim=1)
    return args


def _forward(model: Any, layout: VisualLayout, how: Method, args: dict, n_prompt: int,
             image_token_id: int, token_grid, patch_grid) -> Pass:
    import torch

    with ExitStack() as stack:
        captured = stack.enter_context(visual_tokens(model, layout)) if how.needs_tokens else None
        if how.needs_attention:
            stack.enter_context(eager_attention(model))
            args["output_attentions"] = True
        if how.needs_pixels:
            args["pixel_values"] = args["pixel_values"].detach().clone().requires_grad_(True)
        ids = args["input_ids"][0]
        n_answer = ids.numel() - n_prompt
        # logits of the positions that predict the answer only (the prompt's would be ~400 MB on a
        # 1024^2 image with Qwen's 152k vocabulary, kept in the graph)
        out = model(**args, use_cache=False, logits_to_keep=n_answer + 1)
    logits = out.logits[0, :n_answer].float()
    logprobs = torch.log_softmax(logits, -1).gather(1, ids[n_prompt:, None])[:, 0]
    positions = (ids[:n_prompt] == image_token_id).nonzero()[:, 0]
    n_tokens = token_grid[0] * token_grid[1]
    if positions.numel() != n_tokens:
        raise ExplainError(f"{layout.family}: {positions.numel()} image tokens in the prompt, but the image grid "
                           f"has {n_tokens}: one image per question is supported")
    attention = None
    if how.needs_attention:
        maps = [a[0].float().mean(0) for a in out.attentions if a is not None]
        if not maps:
            raise ExplainError("the model returned no attention weights")
        attention = torch.stack(maps).mean(0).detach()
    return Pass(layout, logprobs, n_prompt, positions, token_grid, patch_grid,
                tokens=captured.tokens if captured is not None else None,
                pixel_values=args.get("pixel_values") if how.needs_pixels else None, attention=attention)


def explain_answer(model: Any, processor: Any, family: str, inputs: Any, answer_ids: Sequence[int], *,
                   image_size: Tuple[int, int], method_name: str = "gradcam",
                   words: Optional[Sequence[str]] = None, progress: Optional[ProgressCallback] = None,
                   cancel: Optional[CancelToken] = None) -> Explanation:
    """Maps for the words of ``answer_ids`` (all, or ``words``), each in [0, 1] on the method's grid."""
    require_full("per-word maps (Grad-CAM)", ExplainError)
    import torch

    layout, how = layout_for(family), method(method_name)
    tokenizer = processor.tokenizer
    ids = [int(i) for i in answer_ids]
    if not ids:
        raise ExplainError("the answer is empty: there is nothing to explain")
    text, every = answer_words(tokenizer, ids)
    if not every:
        raise ExplainError(f"the answer {text!r} has no words to explain")
    chosen = select_words(every, words)
    token_grid, patch_grid = layout.token_grid(inputs, processor), layout.patch_grid(inputs, processor)
    image_token_id = _image_token_id(model, family)
    check(cancel)
    report(progress, "forward", 0, len(chosen) + 1, "one pass over the question and the answer")
    device = inputs["input_ids"].device
    answer = torch.tensor(ids, dtype=inputs["input_ids"].dtype, device=device)
    n_prompt = int(inputs["input_ids"].shape[1])
    out: List[WordMap] = []
    try:
        with torch.enable_grad():
            p = _forward(model, layout, how, _sequence(inputs, answer), n_prompt, image_token_id,
                         token_grid, patch_grid)
            for k, w in enumerate(chosen):
                check(cancel)
                report(progress, "words", k + 1, len(chosen) + 1, w.text)
                out.append(_normalised(w, how.word_map(p, w.tokens)))
    except torch.cuda.OutOfMemoryError as exc:
        raise ExplainError(OOM_ADVICE) from exc
    except (CancelledError, ExplainError):
        raise
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise ExplainError(OOM_ADVICE) from exc
        raise ExplainError(f"computing the maps failed ({type(exc).__name__}: {exc})") from exc
    grid = out[0].scores.shape if out else (patch_grid if how.needs_pixels else token_grid)
    width, height = image_size
    report(progress, "done", len(chosen) + 1, len(chosen) + 1, "")
    return Explanation(text, how.name, out, every, (int(grid[0]), int(grid[1])), (int(width), int(height)),
                       layout.covered_rect(processor, width, height), ids)


def _image_token_id(model: Any, family: str) -> int:
    cfg = hf_model(model).config
    value = getattr(cfg, "image_token_id", None)
    if value is None:
        value = getattr(cfg, "image_token_index", None)
    if value is None:
        raise ExplainError(f"{family}: the model config names no image token")
    return int(value)


def _normalised(word: Word, raw: Any) -> WordMap:
    arr = raw.detach().float().cpu().numpy().astype(np.float32)
    arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    arr = np.maximum(arr, 0.0)
    peak = float(arr.max()) if arr.size else 0.0
    scores = arr / peak if peak > 0 else np.zeros_like(arr)
    r, c = np.unravel_index(int(np.argmax(arr)), arr.shape) if arr.size else (0, 0)
    return WordMap(word, np.clip(scores, 0.0, 1.0).astype(np.float32), peak, (int(r), int(c)))
