"""LLM generation for a dataset project (the GUI's dialog and ``sarlang-cli dataset llm``): pick the
pairs, ask the endpoint through ``llm_generation.generate_from_optical``, store the items.

It takes an API key typed in the dialog (held in memory only), edited prompts, the user's prices,
a choice of pairs, reports live token counts, and stops on errors that every further request
would hit too (401/403/404, an endpoint that does not answer).

Cancel or such a stop keeps what is done: every answer is already in the disk cache, and the
pairs whose answers are all in are read back from it (no request) and stored; a pair cut off
half-way is left for the next run, which finds its finished answers in the cache for free.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..datasets.llm_generation import DEFAULT_PROMPTS, PromptSet, cost_of, estimate_tokens, generate_from_optical
from ..errors import CancelledError, EndpointError
from ..progress import CancelToken
from ..urls import redact_url

__all__ = ["DEFAULT_PROMPTS", "PromptSet", "cost_of", "LLMRequest", "LLMProgress", "LLMOutcome", "count_pairs",
           "run_generation", "store_api_key"]

FATAL_STATUSES = (401, 403, 404)


def store_api_key(endpoint: str, key: str) -> None:
    """Remember ``key`` for ``endpoint`` in the OS keyring (the dialog's "remember" box)."""
    from ..vlm.openai_backend import store_api_key as store

    store(endpoint, key)


@dataclass(frozen=True)
class LLMRequest:
    store_path: str
    endpoint: str
    model: str
    api_key: str = field(default="", repr=False)    # in memory only; empty = OPENAI_API_KEY / keyring
    prompts: PromptSet = field(default_factory=PromptSet)
    concurrency: int = 4
    price_in: Optional[float] = None                   # USD per 1M input tokens; None: the known price table
    price_out: Optional[float] = None                  # USD per 1M output tokens
    only_new: bool = True                              # skip pairs that already have LLM items
    cache_dir: Optional[str] = None                    # default: llm_cache beside the store
    timeout: float = 60.0

    def cache(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.store_path).resolve().parent / "llm_cache"


@dataclass(frozen=True)
class LLMProgress:
    stage: str                 # "pairs" | "connect" | "llm" | "store"
    done: int
    total: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    estimated: bool = False
    message: str = ""


@dataclass
class LLMOutcome:
    pairs: int = 0
    items_added: int = 0
    pairs_stored: int = 0
    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    cost_usd: float = 0.0
    problems: List[str] = field(default_factory=list)
    cancelled: bool = False
    stopped_by: str = ""       # the error that stopped the run, as a person can act on it


def count_pairs(store_path: str) -> Dict[str, int]:
    """{"pairs": images with an optical pair, "new": of those, without LLM items yet}."""
    pairs = _pairs(store_path, only_new=False)
    return {"pairs": len(pairs), "new": len(_pairs(store_path, only_new=True))}


def _pairs(store_path: str, *, only_new: bool) -> list:
    from ..datasets.store import Store

    root = Path(store_path).resolve().parent
    with Store.open(store_path) as store:
        done = {it.image_id for it in store.items(source="llm")} if only_new else set()
        out = []
        for rec in store.images():
            if not rec.optical_path or rec.id in done:
                continue
            p = Path(rec.optical_path)
            if not p.is_file() and (root / p).is_file():
                rec = replace(rec, optical_path=str(root / p))
            out.append(rec)
    return out


class _MeteredBackend:
    """Counts each answer's tokens as it arrives; trips ``stop`` on errors every request would hit."""

    def __init__(self, inner, stop: CancelToken):
        self.inner, self.model, self.stop = inner, inner.model, stop
        self.lock = threading.Lock()
        self.requests = self.prompt_tokens = self.completion_tokens = 0
        self.estimated = False
        self.fatal: Optional[str] = None

    def identity(self):
        return self.inner.identity()

    def complete(self, image, turns, config, *, cancel=None):
        try:
            done = self.inner.complete(image, turns, config, cancel=cancel)
        except EndpointError as e:
            status = getattr(e, "status", 0)
            if status in FATAL_STATUSES or status is None:
                with self.lock:
                    self.fatal = self.fatal or str(e)
                self.stop.cancel()
            raise
        usage = done.usage
        with self.lock:
            self.requests += 1
            if usage is None:
                self.estimated = True
                self.prompt_tokens += sum(estimate_tokens(t.text) for t in turns)
                self.completion_tokens += estimate_tokens(done.text)
            else:
                self.prompt_tokens += usage["prompt_tokens"]
                self.completion_tokens += usage["completion_tokens"]
        return done


class _CacheOnlyBackend:
    """Answers nothing: reading a run back from the cache must not send a request."""

    def __init__(self, model: str):
        self.model = model

    def complete(self, image, turns, config, *, cancel=None):
        raise EndpointError("not answered yet")


def run_generation(req: LLMRequest, *, progress: Optional[Callable] = None,
                   cancel: Optional[CancelToken] = None) -> LLMOutcome:
    from ..datasets.store import Store
    from ..vlm.openai_backend import OpenAIBackend

    def send(stage, done, total, message="", meter=None):
        if progress is None:
            return
        if meter is None:
            progress(LLMProgress(stage, done, total, message=message))
            return
        with meter.lock:
            pt, ct, est = meter.prompt_tokens, meter.completion_tokens, meter.estimated
        progress(LLMProgress(stage, done, total, pt, ct, cost_of(req.model, pt, ct, prices) or 0.0, est, message))

    prices = _prices(req)
    send("pairs", 0, 1, "finding the pairs to ask about")
    pairs = _pairs(req.store_path, only_new=req.only_new)
    out = LLMOutcome(pairs=len(pairs))
    if not pairs:
        return out
    stop = _StopToken(cancel)
    send("connect", 0, 1, f"contacting {redact_url(req.endpoint)}")
    probe = OpenAIBackend(req.endpoint, req.model, api_key=req.api_key or None, timeout=min(req.timeout, 15),
                          max_retries=0)
    probe.load(cancel=stop)
    meter = _MeteredBackend(OpenAIBackend(req.endpoint, req.model, api_key=req.api_key or None,
                                          timeout=req.timeout), stop)
    started: set = set()

    def on_progress(p):
        if p.message and ": " in p.message:
            started.add(p.message.rsplit(": ", 1)[0])
        send("llm", p.done, p.total, p.message, meter)

    try:
        summary = generate_from_optical(pairs, meter, prompts=req.prompts, cache_dir=req.cache(),
                                        concurrency=req.concurrency, progress=on_progress, cancel=stop,
                                        prices=prices)
    except CancelledError:
        out.cancelled, out.stopped_by = True, meter.fatal or ""
        summary = _finished_pairs([p for p in pairs if p.id in started], req, prices)
        summary.cache_hits = max(0, summary.cache_hits - meter.requests)
    out.requests, out.cache_hits = meter.requests, summary.cache_hits
    out.prompt_tokens, out.completion_tokens, out.estimated = \
        meter.prompt_tokens, meter.completion_tokens, meter.estimated
    out.cost_usd = cost_of(req.model, meter.prompt_tokens, meter.completion_tokens, prices) or 0.0
    out.problems = [f"{p['image_id']} ({p['kind'] or 'pair'}): {p['error']}" for p in summary.problems]
    send("store", 0, 1, f"storing {len(summary.items)} items")
    with Store.open(req.store_path) as store:
        out.items_added = store.add_items(summary.items)
    out.pairs_stored = len({it.image_id for it in summary.items})
    return out


def _prices(req: LLMRequest):
    """The user's prices for this model, or None to use llm_generation's table of known models."""
    if req.price_in is None and req.price_out is None:
        return None
    return {req.model: (float(req.price_in or 0.0), float(req.price_out or 0.0))}


def _finished_pairs(started: list, req: LLMRequest, prices):
    """The pairs whose answers are all in the cache, read back without a request."""
    summary = generate_from_optical(started, _CacheOnlyBackend(req.model), prompts=req.prompts,
                                    cache_dir=req.cache(), concurrency=1, prices=prices)
    unfinished = {p["image_id"] for p in summary.problems}
    summary.items = [it for it in summary.items if it.image_id not in unfinished]
    summary.problems = []
    return summary


class _StopToken(CancelToken):
    """Fires on the user's Cancel or on a fatal endpoint error (``cancel()`` here)."""

    def __init__(self, user: Optional[CancelToken]):
        super().__init__()
        self.user = user

    @property
    def cancelled(self) -> bool:
        return super().cancelled or (self.user is not None and self.user.cancelled)

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise CancelledError()
