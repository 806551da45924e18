"""From a sample and its image to the tensors a VLM trains on, with only the answer supervised.

    enc = Encoder(processor, family, config)
    row = enc.encode(sample, image)        # input_ids, labels, attention_mask, pixel_values (+ image_grid_thw)
    n = enc.length(sample)                 # the same row's length, computed without reading the image

The prompt is the model's own chat template with the generation prompt; the supervised part is what
the template adds after it for the assistant's turn (the answer and its end-of-turn tokens). Prompt
and padding are labelled -100, as LLaMA-Factory does. Images are scaled to at most
``config.image_max_pixels`` first (aspect kept), as LLaMA-Factory's ``image_max_pixels`` does.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Tuple

from ..errors import TrainError
from .config import TrainConfig
from .data import TrainSample

IGNORE = -100


class Overlong(Exception):
    """A sample is longer than the cutoff and cannot (or may not) be truncated."""


def fit_pixels(image, max_pixels: int):
    """``image`` (PIL) scaled down so that width * height <= max_pixels, in RGB."""
    from PIL import Image

    w, h = image.size
    if w * h > max_pixels:
        f = math.sqrt(max_pixels / (w * h))
        image = image.resize((max(1, int(w * f)), max(1, int(h * f))), Image.Resampling.BICUBIC)
    return image if image.mode == "RGB" else image.convert("RGB")


def fitted_size(width: int, height: int, max_pixels: int) -> Tuple[int, int]:
    if width * height > max_pixels:
        f = math.sqrt(max_pixels / (width * height))
        return max(1, int(width * f)), max(1, int(height * f))
    return width, height


def chat(question: str, answer: str | None = None) -> List[dict]:
    msgs: List[dict] = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    if answer is not None:
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return msgs


class Encoder:
    def __init__(self, processor: Any, family: str, config: TrainConfig) -> None:
        self.processor, self.family, self.config = processor, family, config
        self.tokenizer = getattr(processor, "tokenizer", processor)
        token = getattr(processor, "image_token", None)
        if token is None:
            raise TrainError(f"the {family} processor names no image token")
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(token)
        self._image_tokens: Dict[Tuple[int, int], int] = {}

    # ------------------------------------------------------------ text
    def texts(self, sample: TrainSample) -> Tuple[str, str]:
        """(prompt, supervised text): the template with the generation prompt, then what the
        template adds for the answer (e.g. "A<|im_end|>\\n")."""
        prompt = self.processor.apply_chat_template(chat(sample.question), add_generation_prompt=True, tokenize=False)
        full = self.processor.apply_chat_template(chat(sample.question, sample.answer), tokenize=False)
        if not full.startswith(prompt):
            raise TrainError(f"the {self.family} chat template does not continue its generation prompt with the "
                             "answer; this model's template cannot be trained on")
        return prompt, full[len(prompt):]

    def answer_ids(self, text: str) -> List[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # ------------------------------------------------------------ lengths
    def image_tokens(self, width: int, height: int) -> int:
        """How many tokens an image of this stored size becomes (after fit_pixels)."""
        size = fitted_size(width, height, self.config.image_max_pixels)
        if size not in self._image_tokens:
            from PIL import Image

            prompt = self.processor.apply_chat_template(chat("x"), add_generation_prompt=True, tokenize=False)
            out = self.processor(text=[prompt], images=[Image.new("RGB", size)], return_tensors="pt")
            self._image_tokens[size] = int((out["input_ids"][0] == self.image_token_id).sum())
        return self._image_tokens[size]

    def length(self, sample: TrainSample) -> int:
        """Tokens of the whole sample (image tokens included), without reading the image."""
        prompt, answer = self.texts(sample)
        text_ids = self.tokenizer(prompt)["input_ids"]
        n_text = len(text_ids) - sum(1 for t in text_ids if t == self.image_token_id)
        return n_text + self.image_tokens(sample.width, sample.height) + len(self.answer_ids(answer))

    def prompt_length(self, sample: TrainSample) -> int:
        prompt, _ = self.texts(sample)
        text_ids = self.tokenizer(prompt)["input_ids"]
        n_text = len(text_ids) - sum(1 for t in text_ids if t == self.image_token_id)
        return n_text + self.image_tokens(sample.width, sample.height)

    # ------------------------------------------------------------ encoding
    def encode(self, sample: TrainSample, image) -> Dict[str, Any]:
        import torch

        image = fit_pixels(image, self.config.image_max_pixels)
        prompt, answer = self.texts(sample)
        inputs = self.processor(text=[prompt], images=[image], return_tensors="pt")
        prompt_ids = inputs["input_ids"][0]
        ans = self.answer_ids(answer)
        cutoff = self.config.cutoff
        if len(prompt_ids) + len(ans) > cutoff:
            if self.config.overlong == "skip" or len(prompt_ids) >= cutoff:
                raise Overlong(f"{sample.id}: {len(prompt_ids) + len(ans)} tokens > cutoff {cutoff}")
            ans = ans[:cutoff - len(prompt_ids)]
        ans_t = torch.tensor(ans, dtype=prompt_ids.dtype)
        row: Dict[str, Any] = {
            "input_ids": torch.cat([prompt_ids, ans_t]),
            "labels": torch.cat([torch.full_like(prompt_ids, IGNORE), ans_t]),
        }
        for key in ("pixel_values", "image_grid_thw"):
            if key in inputs:
                row[key] = inputs[key]
        return row


class Collator:
    """Pads a batch on the right (labels with -100, attention mask 0) and joins the images; counts
    the real tokens it has seen (``tokens``), for tokens/s."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id
        self.tokens = 0
        self.samples = 0

    def __call__(self, rows: List[Dict[str, Any]]) -> Dict[str, Any]:
        import torch

        longest = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), longest), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), longest), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n], labels[i, :n], mask[i, :n] = r["input_ids"], r["labels"], 1
        batch: Dict[str, Any] = {"input_ids": ids, "labels": labels, "attention_mask": mask}
        for key in ("pixel_values", "image_grid_thw"):
            if key in rows[0]:
                batch[key] = torch.cat([r[key] for r in rows], dim=0)
        self.tokens += int(mask.sum())
        self.samples += len(rows)
        return batch
