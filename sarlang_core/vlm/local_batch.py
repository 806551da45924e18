"""Batched generation for LocalBackend: several (image, conversation) pairs in one ``generate``.

Prompts are left-padded (decoder-only models continue from the last position, so padding must sit
before the prompt) and the attention mask hides the padding; Qwen's multimodal rotary positions are
computed from that mask, so greedy answers match one-by-one generation. Used by benchmark runs on
a GPU, where one batch of 8-16 costs about what a single answer does.
"""

from __future__ import annotations

import threading
from typing import List, Optional, Sequence

from ..errors import RequestError
from ..progress import CancelToken
from .backend import ChatTurn, GenerationConfig, check_turns

_PADDING_LOCK = threading.Lock()   # the tokenizer's padding side is shared state


def _rgb(image):
    import numpy as np
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise RequestError(f"the image must be a PIL image or a uint8 array, got {type(image).__name__}")
    return image.convert("RGB")


def batch_inputs(backend, images: Sequence, turns_list: Sequence[Sequence[ChatTurn]]):
    """One left-padded batch of model inputs on the backend's device."""
    if len(images) != len(turns_list) or not images:
        raise RequestError(f"a batch needs one conversation per image (got {len(images)} images, "
                           f"{len(turns_list)} conversations)")
    for turns in turns_list:
        check_turns(turns)
    pil = [_rgb(im) for im in images]
    texts = [backend.prompt_text(im, turns) for im, turns in zip(pil, turns_list)]
    tok = backend.processor.tokenizer
    with _PADDING_LOCK:
        side = tok.padding_side
        tok.padding_side = "left"
        try:
            inputs = backend.processor(images=pil, text=texts, padding=True, return_tensors="pt")
        finally:
            tok.padding_side = side
    inputs = inputs.to(backend.device)
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(backend.dtype)
    return inputs


def generate_batch(backend, images: Sequence, turns_list: Sequence[Sequence[ChatTurn]],
                   config: GenerationConfig = GenerationConfig(), *,
                   cancel: Optional[CancelToken] = None) -> List[str]:
    """The answers to each (image, conversation), in order, from one ``generate`` call."""
    backend.require_loaded()
    inputs = batch_inputs(backend, images, turns_list)
    out = backend.generate_ids(inputs, config, cancel)
    start = inputs["input_ids"].shape[1]
    tok = backend.processor.tokenizer
    return [tok.decode(row[start:].tolist(), skip_special_tokens=True, clean_up_tokenization_spaces=False)
            for row in out]
