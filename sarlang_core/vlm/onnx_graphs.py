"""The three torch modules that ``onnx_export`` traces into ONNX graphs (Qwen2.5-VL).

The vision tower's own forward does index work on Python values of ``grid_thw`` (window order,
per-window splits): traced as it is, a graph would hold one image size. ``VisionGraph`` runs the
tower's own layers with that work taken out as inputs (``onnx_inputs.vision_layout`` computes
it in numpy) and the per-window splits done as one attention with a block mask, so one graph
takes every image size the processor makes. ``DecoderStep`` runs the text model over new
embeddings with the past keys/values as plain tensors and returns the last position's logits.
"""

from __future__ import annotations

from typing import Any, List

import torch
from torch import nn


def _vision_attention(attn: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask) -> torch.Tensor:
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision

    n = x.shape[0]
    q, k, v = attn.qkv(x).reshape(n, 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
    q, k, v = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, v))       # (1, heads, n, head_dim)
    w = torch.matmul(q, k.transpose(2, 3)) * attn.scaling
    if mask is not None:
        w = w + mask
    w = torch.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
    out = torch.matmul(w, v).transpose(1, 2).reshape(n, -1)
    return attn.proj(out)


class VisionGraph(nn.Module):
    """(patches (N, C*T*P*P), positions (N, 2), window_index (N/4,), window_ids (N,)) -> (N/4, hidden)."""

    def __init__(self, visual: Any) -> None:
        super().__init__()
        self.visual = visual
        self.full = set(visual.fullatt_block_indexes)

    def _window_order(self, t: torch.Tensor, window_index: torch.Tensor) -> torch.Tensor:
        n, unit = t.shape[0], self.visual.spatial_merge_unit
        return t.reshape(n // unit, unit, -1)[window_index].reshape(n, -1)

    def forward(self, pixel_values, position_ids, window_index, window_ids):
        v = self.visual
        # The patch embedding is a Conv3d whose kernel equals its stride: one matrix product over the
        # flat patches (ONNX Runtime's CPU Conv took ~1/3 of the tower's time as a 3-D convolution).
        proj = v.patch_embed.proj.weight
        h = self._window_order(pixel_values.to(proj.dtype) @ proj.reshape(proj.shape[0], -1).T, window_index)
        cos, sin = v.rotary_pos_emb(h, position_ids)
        cos, sin = self._window_order(cos, window_index), self._window_order(sin, window_index)
        same = window_ids[:, None] == window_ids[None, :]
        window_mask = torch.zeros(same.shape, dtype=h.dtype).masked_fill(~same, torch.finfo(h.dtype).min)[None, None]
        for i, blk in enumerate(v.blocks):
            h = h + _vision_attention(blk.attn, blk.norm1(h), cos, sin, None if i in self.full else window_mask)
            h = h + blk.mlp(blk.norm2(h))
        return v.merger(h)[torch.argsort(window_index)]


class EmbedGraph(nn.Module):
    """input_ids (1, L) -> embeddings (1, L, hidden)."""

    def __init__(self, embed_tokens: nn.Module) -> None:
        super().__init__()
        self.embed_tokens = embed_tokens

    def forward(self, input_ids):
        return self.embed_tokens(input_ids)


class DecoderStep(nn.Module):
    """(embeddings (1, L, hidden), positions (3, 1, L), mask (1, past + L), past k/v per layer)
    -> (logits of the last position (1, 1, vocab), present k/v per layer (1, kv_heads, past + L, head_dim))."""

    def __init__(self, language_model: Any, lm_head: nn.Module) -> None:
        super().__init__()
        self.lm, self.head = language_model, lm_head
        self.layers = language_model.config.num_hidden_layers

    def forward(self, inputs_embeds, position_ids, attention_mask, *past):
        from transformers import DynamicCache

        cache = DynamicCache(config=self.lm.config)
        for i in range(self.layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        new, total = inputs_embeds.shape[1], attention_mask.shape[1]
        rows = torch.arange(new).view(-1, 1)
        cols = torch.arange(total).view(1, -1)
        allowed = (cols <= rows + (total - new)) & attention_mask[:, None, None, :].bool()
        dtype = inputs_embeds.dtype
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
        masks = {kind: mask for kind in set(self.lm.config.layer_types)}
        out = self.lm(inputs_embeds=inputs_embeds, position_ids=position_ids, attention_mask=masks,
                      cache=cache, use_cache=True)
        presents: List[torch.Tensor] = []
        for layer in cache.layers[: self.layers]:
            presents += [layer.keys, layer.values]
        return (self.head(out.last_hidden_state[:, -1:, :]), *presents)


def decoder_io_names(layers: int) -> tuple:
    past = [f"past.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    present = [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    return ["inputs_embeds", "position_ids", "attention_mask", *past], ["logits", *present]
