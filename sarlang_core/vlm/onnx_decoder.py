"""The ONNX decoder graph step by step, with the KV cache kept in ONNX Runtime's memory.

Through plain ``session.run`` every token copies each layer's whole past keys and values out of
ONNX Runtime into new numpy arrays and back in: on a GPU that is two trips over PCIe of a cache
that grows with the answer. With IO binding the presents of one step are the pasts of the next
as OrtValues on the session's device; only the last position's logits (one vocabulary row) come
back to the host. That is the default on CUDA. On the CPU there is no trip to save, and the
binding's own overhead made it 0.95x the plain path (bench/bench_onnx.py, BENCHMARKS.md), so the
CPU keeps ``session.run``. ``SARLANG_ORT_IOBINDING=1|0`` forces either way.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List

import numpy as np

ENV_IOBINDING = "SARLANG_ORT_IOBINDING"


def _use_binding(device: str) -> bool:
    flag = os.environ.get(ENV_IOBINDING, "auto").strip().lower()
    if flag in ("0", "off", "no"):
        return False
    return flag in ("1", "on", "yes") or device == "cuda"


class DecoderRunner:
    """One conversation's decoding: ``step(embeds, positions)`` -> the next token's logits."""

    def __init__(self, session: Any, device: str, *, layers: int, kv_heads: int, head_dim: int) -> None:
        self.session = session
        self.device = "cuda" if str(device).startswith("cuda") else "cpu"
        self.past_names = [f"past.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
        self.present_names = [o.name for o in session.get_outputs()][1:]
        self.bound = _use_binding(self.device)
        empty = np.zeros((1, kv_heads, 0, head_dim), dtype=np.float32)
        self.length = 0
        if self.bound:
            import onnxruntime as ort

            start = ort.OrtValue.ortvalue_from_numpy(empty, self.device, 0)
            self.past: Dict[str, Any] = {name: start for name in self.past_names}
        else:
            self.past = {name: empty for name in self.past_names}

    def step(self, embeds: np.ndarray, positions: np.ndarray) -> np.ndarray:
        total = self.length + embeds.shape[1]
        mask = np.ones((1, total), dtype=np.int64)
        logits = self._bound(embeds, positions, mask) if self.bound else self._plain(embeds, positions, mask)
        self.length = total
        return logits

    def _plain(self, embeds, positions, mask) -> np.ndarray:
        outs = self.session.run(None, {"inputs_embeds": embeds, "position_ids": positions,
                                       "attention_mask": mask, **self.past})
        self.past = dict(zip(self.past_names, outs[1:]))
        return outs[0][0, -1]

    def _bound(self, embeds, positions, mask) -> np.ndarray:
        binding = self.session.io_binding()
        binding.bind_cpu_input("inputs_embeds", np.ascontiguousarray(embeds, dtype=np.float32))
        binding.bind_cpu_input("position_ids", np.ascontiguousarray(positions, dtype=np.int64))
        binding.bind_cpu_input("attention_mask", mask)
        for name in self.past_names:
            binding.bind_ortvalue_input(name, self.past[name])
        binding.bind_output("logits", "cpu")
        for name in self.present_names:
            binding.bind_output(name, self.device, 0)
        self.session.run_with_iobinding(binding)
        outs: List[Any] = binding.get_outputs()
        self.past = dict(zip(self.past_names, outs[1:]))
        return outs[0].numpy()[0, -1]
