"""The pieces of streaming a local model's answer: a streamer that queues token ids for another
thread, an incremental decoder whose pieces join to the whole decode, and a StoppingCriteria
that polls a CancelToken (see ``LocalBackend.stream``)."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Dict, List, Optional

from ..progress import CancelToken

END = object()   # what TokenQueue.end() puts last


class TokenQueue:
    """A generate() streamer that hands token ids to the consumer thread, stamped with the time they
    were produced (for latency figures). The prompt, sent first by generate, is skipped."""

    def __init__(self) -> None:
        self.q: "queue.SimpleQueue" = queue.SimpleQueue()
        self._prompt_seen = False

    def put(self, value) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.q.put((value.reshape(-1).tolist(), time.perf_counter()))

    def end(self) -> None:
        self.q.put(END)


class IncrementalDecoder:
    """Token ids in, new text out, such that the pieces join to ``decode(all ids)``.

    Decodes a short window (the previous piece's tokens as context, then the new ones) and emits
    the difference; text ending in U+FFFD (a UTF-8 character split across tokens) waits for the next
    token. The context token keeps SentencePiece leading spaces right."""

    def __init__(self, tokenizer) -> None:
        self.tok, self.prefix, self.read = tokenizer, 0, 0
        self.ids: List[int] = []

    def _decode(self, ids: List[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def add(self, ids: List[int], final: bool = False) -> str:
        self.ids.extend(ids)
        before = self._decode(self.ids[self.prefix:self.read])
        text = self._decode(self.ids[self.prefix:])
        if len(text) <= len(before) or (text.endswith("\ufffd") and not final):
            return ""
        self.prefix, self.read = self.read, len(self.ids)
        return text[len(before):]


class CancelCriteria:
    """StoppingCriteria: stop all sequences once the user's token or the stream's own stop is set."""

    def __init__(self, cancel: Optional[CancelToken], stop: threading.Event) -> None:
        self.cancel, self.stop = cancel, stop
        self._flags: Dict[tuple, Any] = {}   # (flag, batch, device) -> bool tensor

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        flag = self.stop.is_set() or (self.cancel is not None and self.cancel.cancelled)
        key = (flag, input_ids.shape[0], input_ids.device)
        if key not in self._flags:  # one tensor per answer: no host-to-device copy per step
            self._flags[key] = torch.full((input_ids.shape[0],), flag, dtype=torch.bool, device=input_ids.device)
        return self._flags[key]
