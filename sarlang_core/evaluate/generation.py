"""Answers for many samples: batched on a local model, bounded concurrency against a server.

``answer_all`` yields one Answer per sample as it is ready (batched: a batch at a time). A
sample whose model call fails gets an Answer with ``error`` set; the others go on. Images are
prepared in worker threads while the model works on the previous ones.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence, Union

from ..errors import CancelledError, DeviceLostError, OutOfMemoryError, SarlangError
from ..progress import CancelToken, check
from ..urls import redact_text
from ..vlm.backend import ChatTurn, GenerationConfig
from .batch_fit import BatchFit
from .dataset_source import Sample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    id: str
    text: Optional[str]
    error: Optional[str]
    seconds: float                  # model time (a batch's time is shared out evenly)


Job = Callable[[Sample], tuple]    # sample -> (image, [ChatTurn]); may raise SarlangError


def ask_one(backend, image, turns: Sequence[ChatTurn], config: GenerationConfig,
            cancel: Optional[CancelToken]) -> str:
    """One whole answer from any VLMBackend (non-streaming where the backend offers it)."""
    if hasattr(backend, "generate"):         # OpenAIBackend: one plain request
        return backend.generate(image, turns, config, cancel=cancel)
    if hasattr(backend, "answer"):           # LocalBackend: plain generate, no streamer
        return backend.answer(image, turns, config, cancel=cancel)
    return "".join(backend.stream(image, turns, config, cancel=cancel))


def _message(exc: BaseException) -> str:
    return redact_text(str(exc) if isinstance(exc, SarlangError) else f"{type(exc).__name__}: {exc}")


def answer_all(backend, samples: Sequence[Sample], prepare: Job, config: GenerationConfig, *,
               batch_size: Union[int, str, BatchFit] = 1, concurrency: int = 1,
               cancel: Optional[CancelToken] = None) -> Iterator[Answer]:
    """``batch_size``: 1..256, "auto" (batch_fit.py) or a BatchFit the caller reads afterwards."""
    if hasattr(backend, "generate_batch"):   # an in-process model: one call at a time
        fit = batch_size if isinstance(batch_size, BatchFit) else BatchFit.for_backend(batch_size, backend)
        yield from _batched(backend, samples, prepare, config, fit, cancel)
    else:
        yield from _concurrent(backend, samples, prepare, config, max(1, concurrency), cancel)


def _prepare_many(prepare: Job, chunk: Sequence[Sample]) -> List[Union[tuple, SarlangError]]:
    out: List[Union[tuple, SarlangError]] = []
    for s in chunk:
        try:
            out.append(prepare(s))
        except SarlangError as exc:
            out.append(exc)
        except OSError as exc:
            out.append(SarlangError(f"{s.image}: cannot read the image ({exc.strerror or exc})"))
    return out


def _shape_key(prepared: tuple) -> tuple:
    """Samples with the same image size and similar prompts batch with the least padding; the key
    orders them by cost (pixels, then prompt length)."""
    image, turns = prepared
    size = tuple(image.shape[1::-1] if hasattr(image, "shape") else getattr(image, "size", (0, 0)))
    return (size[0] * size[1], size, sum(len(t.text) for t in turns))


def _windows(samples: Sequence[Sample], fit: BatchFit) -> Iterator[Sequence[Sample]]:
    """Consecutive slices of the samples, each as long as the fit's window when it is taken."""
    i = 0
    while i < len(samples):
        size = fit.window
        yield samples[i:i + size]
        i += size


def _batched(backend, samples, prepare, config, fit: BatchFit, cancel) -> Iterator[Answer]:
    """Windows of samples are prepared on a CPU worker (the next while the model answers), grouped
    by image size and prompt length into batches, and answered; answers come out in the samples'
    order as soon as each is ready."""
    windows = _windows(samples, fit)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-images") as loader:
        window = next(windows, None)
        pending = loader.submit(_prepare_many, prepare, window) if window is not None else None
        while window is not None and pending is not None:
            check(cancel)
            inputs = pending.result()
            following = next(windows, None)
            pending = loader.submit(_prepare_many, prepare, following) if following is not None else None
            yield from _answer_window(backend, window, inputs, fit, config, cancel)
            window = following


def _answer_window(backend, window, inputs, fit: BatchFit, config, cancel) -> Iterator[Answer]:
    done: dict = {s.id: Answer(s.id, None, _message(x), 0.0)
                  for s, x in zip(window, inputs) if isinstance(x, Exception)}
    ready = [(s, x) for s, x in zip(window, inputs) if not isinstance(x, Exception)]
    # the costliest first (stable: equal keys keep their order), so that "auto" measures them
    ready.sort(key=lambda item: _shape_key(item[1]), reverse=True)
    order = iter(window)
    head = next(order, None)
    pos = 0
    while head is not None:
        while head is not None and head.id in done:          # in the samples' order, as soon as ready
            yield done.pop(head.id)
            head = next(order, None)
        if head is None:
            break
        if pos >= len(ready):      # a batch gave fewer answers than it was asked: never drop a sample
            raise SarlangError(f"the model gave no answer for {head.id}")
        group = ready[pos:pos + fit.n]
        pos += len(group)
        for ans in _answer_group(backend, group, fit, config, cancel):
            done[ans.id] = ans


def _answer_group(backend, group, fit: BatchFit, config, cancel) -> Iterator[Answer]:
    """One batch; out of memory: halve it (and every later batch) and answer the halves."""
    if len(group) > 1 or fit.measuring:
        t0 = time.perf_counter()
        try:
            fit.begin()
            texts = backend.generate_batch([x[0] for _, x in group], [x[1] for _, x in group], config,
                                           cancel=cancel)
            fit.answered(len(group))
            each = (time.perf_counter() - t0) / len(group)
            for (s, _), text in zip(group, texts):
                yield Answer(s.id, text, None, each)
            return
        except (CancelledError, DeviceLostError):   # a lost GPU fails every sample after it: stop, resumably
            raise
        except OutOfMemoryError:
            if len(group) == 1:
                fit.out_of_memory(1)
                yield _answer_alone(backend, group[0], config, cancel)
                return
            half = len(group) // 2
            fit.out_of_memory(len(group))
            yield from _answer_group(backend, group[:half], fit, config, cancel)
            yield from _answer_group(backend, group[half:], fit, config, cancel)
            return
        except SarlangError as exc:    # another failure of the whole batch: answer one by one below
            log.info("a batch of %d failed (%s); answering one by one", len(group), exc)
    for item in group:
        check(cancel)
        yield _answer_alone(backend, item, config, cancel)


def _answer_alone(backend, item, config, cancel) -> Answer:
    s, (image, turns) = item
    t1 = time.perf_counter()
    try:
        return Answer(s.id, ask_one(backend, image, turns, config, cancel), None, time.perf_counter() - t1)
    except (CancelledError, DeviceLostError):
        raise
    except SarlangError as exc:
        return Answer(s.id, None, _message(exc), time.perf_counter() - t1)


def _concurrent(backend, samples, prepare, config, concurrency, cancel) -> Iterator[Answer]:
    stop = threading.Event()         # set when the consumer walks away: queued work is skipped

    def one(s: Sample) -> Answer:
        check(cancel)
        if stop.is_set():
            raise CancelledError()
        try:
            image, turns = prepare(s)
        except SarlangError as exc:
            return Answer(s.id, None, _message(exc), 0.0)
        except OSError as exc:
            return Answer(s.id, None, f"{s.image}: cannot read the image ({exc.strerror or exc})", 0.0)
        t = time.perf_counter()
        try:
            return Answer(s.id, ask_one(backend, image, turns, config, cancel), None, time.perf_counter() - t)
        except (CancelledError, DeviceLostError):
            raise
        except Exception as exc:   # one bad reply must not stop the run
            return Answer(s.id, None, _message(exc), time.perf_counter() - t)

    if concurrency == 1:             # no thread hop: the cheapest path for an instant backend
        for s in samples:
            check(cancel)
            yield one(s)
        return
    it = iter(samples)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench-ask") as pool:
        running = set()
        try:
            for s in it:                 # keep at most `concurrency` requests in flight
                running.add(pool.submit(one, s))
                if len(running) >= concurrency:
                    done, running = _wait_some(running)
                    yield from (f.result() for f in done)
            while running:
                done, running = _wait_some(running)
                yield from (f.result() for f in done)
        finally:
            stop.set()
            for f in running:
                f.cancel()


def _wait_some(running) -> tuple:
    done, rest = wait(running, return_when=FIRST_COMPLETED)
    return done, set(rest)
