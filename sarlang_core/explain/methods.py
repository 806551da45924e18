"""Three ways to say where a word came from, on one interface.

Each method turns one forward pass (``Pass``) and a word's token span into a non-negative map
over a grid of the image.
The target of a word is the sum of the log-probabilities of its tokens given their prefix
(teacher-forced), so a word in several pieces is one target.

- ``gradcam``: Grad-CAM on the visual tokens the language model receives: channel weights are
  the token-mean of d target / d token, the map is ReLU(tokens . weights) on the token grid.
- ``gradxinput``: |sum(pixels * d target / d pixels)| per pixel patch (through the vision
  tower): twice the resolution of the token grid for Qwen's 2 x 2 merge.
- ``attention``: the attention the positions that predict the word pay to each visual token,
  averaged over layers and heads (no gradient; eager attention for that pass).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from ..errors import ExplainError
from .layout import VisualLayout


@dataclass
class Pass:
    """What one forward pass over prompt + answer leaves for the methods."""

    layout: VisualLayout
    logprobs: Any                    # (T,) log p(answer token t | prefix), graph kept
    answer_start: int                # sequence index of the first answer token
    visual_positions: Any            # (N,) sequence indices of the visual tokens
    token_grid: Tuple[int, int]
    patch_grid: Tuple[int, int]
    tokens: Any = None               # (N, D) visual tokens (leaf), for gradcam
    pixel_values: Any = None         # processor pixels requiring grad, for gradxinput
    attention: Any = None            # (S, S) attention averaged over layers and heads

    def target(self, span: Tuple[int, int]) -> Any:
        a, b = span
        return self.logprobs[a:b].sum()


class Method(ABC):
    name = ""
    label = ""
    needs_tokens = False             # install the visual-token hook
    needs_pixels = False             # gradients to the pixels (the vision tower in the graph)
    needs_attention = False

    @abstractmethod
    def word_map(self, p: Pass, span: Tuple[int, int]) -> Any:
        """The word's non-negative map over the token (or patch) grid, a torch tensor."""


class GradientMethod(Method):
    """A map from d target / d ``leaf``, one backward pass per word over the kept graph.

    (One batched backward for several words, ``is_grads_batched``, was measured: 10x slower for
    gradient x input, whose vision-tower ops fall back to per-sample loops under vmap, and no faster
    for Grad-CAM on the CPU; see BENCHMARKS.md.)"""

    @abstractmethod
    def leaf(self, p: Pass) -> Any:
        """The tensor the gradients are taken to."""

    @abstractmethod
    def from_grad(self, p: Pass, grad: Any) -> Any:
        """A word's map from its gradient."""

    def word_map(self, p: Pass, span: Tuple[int, int]) -> Any:
        import torch

        return self.from_grad(p, torch.autograd.grad(p.target(span), self.leaf(p), retain_graph=True)[0])


class GradCAM(GradientMethod):
    name, label = "gradcam", "Grad-CAM (visual tokens)"
    needs_tokens = True

    def leaf(self, p: Pass) -> Any:
        return p.tokens

    def from_grad(self, p: Pass, grad: Any) -> Any:
        import torch

        weights = grad.float().mean(0)
        return torch.relu(p.tokens.detach().float() @ weights).reshape(p.token_grid)


class GradXInput(GradientMethod):
    name, label = "gradxinput", "Gradient × input (pixels)"
    needs_pixels = True

    def leaf(self, p: Pass) -> Any:
        return p.pixel_values

    def from_grad(self, p: Pass, grad: Any) -> Any:
        prod = grad.float() * p.pixel_values.detach().float()
        per_pixel = prod.sum(-1) if prod.dim() == 2 else prod[0].sum(0)   # Qwen patches | LLaVA (3, H, W)
        return p.layout.pixels_to_patches(per_pixel.abs(), *p.patch_grid)


class AttentionToImage(Method):
    name, label = "attention", "Attention to the image"
    needs_attention = True

    def word_map(self, p: Pass, span: Tuple[int, int]) -> Any:
        a, b = span
        rows = p.attention[p.answer_start + a - 1:p.answer_start + b - 1]   # the positions predicting the word
        return rows[:, p.visual_positions].mean(0).reshape(p.token_grid)


METHODS: Dict[str, Method] = {m.name: m for m in (GradCAM(), GradXInput(), AttentionToImage())}


def method(name: Optional[str]) -> Method:
    try:
        return METHODS[name or "gradcam"]
    except KeyError:
        raise ExplainError(f"unknown explanation method {name!r}; choose one of {', '.join(METHODS)}") from None
