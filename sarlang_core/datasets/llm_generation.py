"""Captions and "general inquiries" for SAR images by modality transfer (SARLANG-1M, Sec. 3).

The paper asks GPT-4o about the OPTICAL image of each optical/SAR pair and attaches the answers
to the SAR image (both show the same place); colour words are then reviewed out, since SAR has
no colour. Here, per pair, three requests go to an OpenAI-compatible endpoint:

* ``concise``   -> one Item of type ``caption_concise``
* ``detailed``  -> one Item of type ``caption_detailed``
* ``inquiries`` -> N Items of type ``general`` from a JSON array of
  ``{"question", "answer", "category"}`` (category: shape, direction, land cover, pattern,
  reasoning; anything else becomes "other"). The array is parsed leniently (code fences, prose
  around it, ``{"questions": [...]}`` wrappers); entries without a question or answer are dropped.

    summary = generate_from_optical(pairs, OpenAIBackend(url, "gpt-4o"), cache_dir=proj / "llm_cache")
    summary.items, summary.problems, summary.cost_usd

Items: ``source="llm"``, ``image_id`` = the SAR record's id, ``meta`` = {model, prompt_id, cached,
usage, optical_path[, category][, colour_words]}. ``colour_words`` lists colour terms found in the
text (the paper's failure case) so review can catch them; nothing is dropped for it.

Cache: every answer is stored as one JSON file under ``cache_dir`` keyed by
sha256(sha256(optical file bytes) | prompt text | model name), written atomically (temp file +
``os.replace``) as soon as it arrives, so a re-run makes no HTTP request for anything already
answered and a crash loses nothing answered before it. Unparsable inquiry answers are cached too
(they are what the model said; with the default greedy config a re-ask gives the same); delete the
file, or change the prompt, to ask again. Generation settings are not part of the key.

Concurrency: at most ``concurrency`` requests are in flight (a ThreadPoolExecutor of that size).
Retries (429/5xx/timeouts) are the backend's own. A request that still fails, an unreadable image,
or an unparsable inquiry answer becomes an entry in ``summary.problems``; the run goes on.

Cost: prompt/completion tokens come from the server's ``usage`` when it sends one, else they are
estimated as characters / 4 (text only: image tokens are not estimated; ``usage["estimated"]``
says so). ``PRICES_PER_1M`` is USD per 1M tokens, user-editable (see its note).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ..atomic import write_text_atomic
from ..errors import CancelledError, RequestError
from ..progress import CancelToken, ProgressCallback, check, report
from ..vlm.backend import ChatTurn, GenerationConfig
from .llm_prompts import DEFAULT_PROMPTS, INQUIRY_CATEGORIES, KINDS, PromptSet, parse_inquiries  # noqa: F401
from .qc import colour_words_in
from .records import ImageRecord, Item

log = logging.getLogger(__name__)

# USD per 1M tokens (input, output). Source: OpenAI's public API pricing page as read 2025-01
# (gpt-4o "2024-08-06" and later; gpt-4o-mini). USER-EDITABLE: prices change; edit or extend this
# table (or pass ``prices=``) for your provider and date. Unknown models cost 0 and are listed in
# ``LLMRunSummary.unpriced_models``.
PRICES_PER_1M: Dict[str, Tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
}

_ITEM_TYPE = {"concise": "caption_concise", "detailed": "caption_detailed"}



@dataclass
class LLMRunSummary:
    items: List[Item] = field(default_factory=list)
    problems: List[Dict[str, str]] = field(default_factory=list)   # {image_id, kind, error}
    requests: int = 0              # answers fetched over HTTP this run
    cache_hits: int = 0
    prompt_tokens: int = 0         # this run's requests only
    completion_tokens: int = 0
    estimated_tokens: bool = False  # some counts above are chars/4 estimates
    cost_usd: float = 0.0           # this run's requests only
    cached_cost_usd: float = 0.0    # what the cached answers cost when they were fetched
    unpriced_models: List[str] = field(default_factory=list)
    model: str = ""


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def cost_of(model: str, prompt_tokens: int, completion_tokens: int,
            prices: Optional[Dict[str, Tuple[float, float]]] = None) -> Optional[float]:
    """USD for the tokens, or None when ``model`` has no price. Dated snapshots such as
    ``gpt-4o-2024-08-06`` use the longest table entry they start with."""
    table = PRICES_PER_1M if prices is None else prices
    name = model if model in table else max((k for k in table if model.startswith(k + "-")), key=len, default=None)
    if name is None:
        return None
    p_in, p_out = table[name]
    return (prompt_tokens * p_in + completion_tokens * p_out) / 1e6


# ---- cache ------------------------------------------------------------------------------------
def cache_key(image_sha256: str, prompt: str, model: str) -> str:
    h = hashlib.sha256()
    for part in (image_sha256, prompt, model):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def _cache_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / key[:2] / f"{key}.json"


def _read_cache(path: Path) -> Optional[Dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None   # missing or damaged: ask again
    return data if isinstance(data, dict) and isinstance(data.get("text"), str) else None


# ---- requests ---------------------------------------------------------------------------------
def _model_name(backend: Any) -> str:
    name = getattr(backend, "model", None)
    if not name:
        try:
            name = backend.identity().get("model")
        except Exception as exc:
            log.debug("the backend does not say its model (%s)", exc)
            name = None
    return str(name or "unknown")


def _ask(backend: Any, image: Any, prompt: str, config: GenerationConfig,
         cancel: Optional[CancelToken]) -> Tuple[str, Optional[Dict[str, int]]]:
    """(answer, usage or None). Backends with ``complete`` (OpenAIBackend) report token usage;
    others go through generate/stream."""
    turns = [ChatTurn("user", prompt)]
    if hasattr(backend, "complete"):
        done = backend.complete(image, turns, config, cancel=cancel)
        return done.text, done.usage
    if hasattr(backend, "generate"):
        return backend.generate(image, turns, config, cancel=cancel), None
    return "".join(backend.stream(image, turns, config, cancel=cancel)), None


class _Run:
    def __init__(self, backend, prompts: PromptSet, cache_dir: Path, config: GenerationConfig,
                 cancel: Optional[CancelToken]):
        self.backend, self.prompts, self.cache_dir = backend, prompts, cache_dir
        self.config, self.cancel = config, cancel
        self.model = _model_name(backend)
        self._hash_lock = threading.Lock()
        self._hashes: Dict[str, str] = {}

    def image_hash(self, path: str) -> str:
        with self._hash_lock:
            if path in self._hashes:
                return self._hashes[path]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        with self._hash_lock:
            self._hashes[path] = h.hexdigest()
        return h.hexdigest()

    def task(self, rec: ImageRecord, kind: str) -> Dict[str, Any]:
        """{text, usage, cached} for one (pair, kind); raises on failure."""
        check(self.cancel)
        prompt = self.prompts.text(kind)
        optical = rec.optical_path
        if not optical:
            raise RequestError(f"{rec.id}: no optical image paired")
        path = _cache_path(self.cache_dir, cache_key(self.image_hash(optical), prompt, self.model))
        hit = _read_cache(path)
        if hit is not None:
            return {"text": hit["text"], "usage": hit.get("usage") or {}, "cached": True}
        from PIL import Image
        with Image.open(optical) as im:
            im.load()
            image = im.convert("RGB") if im.mode not in ("L", "RGB") else im.copy()
        text, usage = _ask(self.backend, image, prompt, self.config, self.cancel)
        if usage is None:
            usage = {"prompt_tokens": estimate_tokens(prompt), "completion_tokens": estimate_tokens(text),
                     "estimated": True}
        write_text_atomic(path, json.dumps({"text": text, "usage": usage, "model": self.model,
                                        "prompt_id": self.prompts.prompt_id(kind), "prompt": prompt,
                                        "optical_path": rec.optical_path, "image_id": rec.id},
                                       ensure_ascii=False, indent=1))
        return {"text": text, "usage": usage, "cached": False}


def generate_from_optical(pairs: Sequence[ImageRecord], backend: Any, *, prompts: PromptSet = DEFAULT_PROMPTS,
                          cache_dir: Union[str, Path], concurrency: int = 4,
                          config: GenerationConfig = GenerationConfig(max_new_tokens=300),
                          progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
                          prices: Optional[Dict[str, Tuple[float, float]]] = None) -> LLMRunSummary:
    """Caption and question each pair's optical image; Items go to the SAR image (see module notes).

    Items come out in ``pairs`` order (concise, detailed, then the inquiries) whatever order the
    answers arrive in. Raises CancelledError when ``cancel`` fires (answers received so far stay
    cached); RequestError for bad arguments. Everything else lands in ``summary.problems``."""
    if not (isinstance(concurrency, int) and concurrency >= 1):
        raise RequestError(f"concurrency must be a positive integer, got {concurrency!r}")
    if not isinstance(config, GenerationConfig):
        raise RequestError("config must be a GenerationConfig")
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    run = _Run(backend, prompts, cache, config, cancel)
    summary = LLMRunSummary(model=run.model)
    kinds = [k for k in KINDS if k != "inquiries" or prompts.n_inquiries > 0]

    jobs: List[Tuple[int, ImageRecord, str]] = []
    for i, rec in enumerate(pairs):
        if not rec.optical_path:
            summary.problems.append({"image_id": rec.id, "kind": "", "error": "no optical image paired"})
        elif not os.path.isfile(rec.optical_path):
            summary.problems.append({"image_id": rec.id, "kind": "",
                                     "error": f"the optical image is missing: {rec.optical_path}"})
        else:
            jobs.extend((i, rec, k) for k in kinds)

    results: Dict[Tuple[int, str], Dict[str, Any]] = {}
    errors: Dict[Tuple[int, str], str] = {}
    total, done = len(jobs), 0
    report(progress, "llm", 0, total, f"{total} requests for {len(pairs)} pairs")
    pending_jobs = list(reversed(jobs))
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="llm-gen") as pool:
        running: Dict[Any, Tuple[int, ImageRecord, str]] = {}
        try:
            while pending_jobs or running:
                # submit lazily: never more than `concurrency` tasks queued, so cancel stops quickly
                while pending_jobs and len(running) < concurrency:
                    check(cancel)
                    job = pending_jobs.pop()
                    running[pool.submit(run.task, job[1], job[2])] = job
                finished, _ = wait(list(running), timeout=0.1, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i, rec, kind = running.pop(fut)
                    try:
                        results[(i, kind)] = fut.result()
                    except CancelledError:
                        raise
                    except Exception as e:
                        errors[(i, kind)] = f"{type(e).__name__}: {e}" if not str(e) else str(e)
                    done += 1
                    report(progress, "llm", done, total, f"{rec.id}: {kind}")
                check(cancel)
        except BaseException:
            for fut in running:
                fut.cancel()
            raise

    unpriced = set()
    for i, rec in enumerate(pairs):
        for kind in kinds:
            if (i, kind) in errors:
                summary.problems.append({"image_id": rec.id, "kind": kind, "error": errors[(i, kind)]})
                continue
            res = results.get((i, kind))
            if res is None:
                continue
            usage = dict(res["usage"])
            pt, ct = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
            cost = cost_of(run.model, pt, ct, prices)
            if cost is None:
                unpriced.add(run.model)
                cost = 0.0
            if res["cached"]:
                summary.cache_hits += 1
                summary.cached_cost_usd += cost
            else:
                summary.requests += 1
                summary.prompt_tokens += pt
                summary.completion_tokens += ct
                summary.estimated_tokens |= bool(usage.get("estimated"))
                summary.cost_usd += cost
            base = {"model": run.model, "prompt_id": prompts.prompt_id(kind), "cached": res["cached"],
                    "usage": usage, "optical_path": rec.optical_path}
            if kind in _ITEM_TYPE:
                answer = res["text"].strip()
                if not answer:
                    summary.problems.append({"image_id": rec.id, "kind": kind,
                                             "error": "the model gave an empty answer"})
                    continue
                question = prompts.concise_question if kind == "concise" else prompts.detailed_question
                summary.items.append(Item(rec.id, _ITEM_TYPE[kind], question, answer, source="llm",
                                          meta=_with_colours(base, answer)))
                continue
            try:
                qas = parse_inquiries(res["text"])
            except ValueError as e:
                summary.problems.append({"image_id": rec.id, "kind": kind,
                                         "error": f"unusable inquiries answer: {e}; starts {res['text'][:80]!r}"})
                continue
            for qa in qas:
                meta = _with_colours(dict(base, category=qa["category"]), qa["question"] + " " + qa["answer"])
                summary.items.append(Item(rec.id, "general", qa["question"], qa["answer"], source="llm", meta=meta))
    summary.unpriced_models = sorted(unpriced)
    return summary


def _with_colours(meta: Dict[str, Any], text: str) -> Dict[str, Any]:
    found = colour_words_in(text)   # the same vocabulary as QC's colour flag
    if found:
        meta["colour_words"] = found
    return meta
