"""The paper's LLM judge: prompt, reply parsing, a verdict cache and an HTTP judge.

Two prompts (``JUDGE_PROMPTS``): "released" is what the authors' released ``Evaluate_VQA.py``
(Jimmyxichen/SARLANG-1M) sends, and so what produced the paper's numbers: newline-separated fields,
its own synonym examples, "Do not explain the reason.", the text in one text part of the user
message, and only ``model`` and ``max_tokens=100`` in the body (the server's default temperature).
"paper-text" is the wording printed in the paper (section 4.1.2), sent with temperature 0. Judges
drift from run to run, so verdicts are cached by (question, ground truth, prediction, judge model,
prompt); a reply we cannot read is not cached, so the next run asks again.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from ..errors import CancelledError, EndpointError, SarlangError
from ..progress import CancelToken

__all__ = ["JUDGE_PROMPT", "JUDGE_PROMPTS", "RELEASED_PROMPT", "JudgeVerdict", "LLMJudge", "VerdictCache",
           "parse_verdict", "default_cache_path"]

# the wording printed in the paper
JUDGE_PROMPT = ("Question: {question}, Ground Truth Answer: {ground_truth}, Predicted Answer: {prediction}. "
                "Does the predicted answer match the ground truth? Answer 1 for match and 0 for not match. "
                "Use semantic meaning, not exact match. Synonyms are also treated as a match, e.g., oval and "
                "circular, pond and swimming pool.")
# what the released Evaluate_VQA.py sends (its trailing newline included)
RELEASED_PROMPT = ("Question: {question}\nGround Truth Answer: {ground_truth}\nPredicted Answer: {prediction}\n"
                   "Does the predicted answer match the ground truth? Answer 1 for match and 0 for not match. "
                   "Use semantic meaning not exact match. Synonyms are also treated as a match, e.g., football and "
                   "soccer, playground and ground track field, building and rooftop, pond and swimming pool. "
                   "Do not explain the reason.\n")
JUDGE_PROMPTS: Dict[str, str] = {"released": RELEASED_PROMPT, "paper-text": JUDGE_PROMPT}
MAX_TOKENS = 100

_MARKUP = re.compile(r"[*_`#>\"']")
_LEAD = re.compile(r"^(?:the\s+)?(?:final\s+)?(?:answer|verdict|output|result|score|match)(?:\s+is)?\s*[:=\-]?\s*",
                   re.IGNORECASE)


def parse_verdict(reply: str) -> Optional[int]:
    """1 or 0 from a judge's reply ("1", "1.", "Answer: 1", "**0**", "1 - match"); None for
    refusals, nonsense, and replies naming both digits ("1 or 0")."""
    text = _MARKUP.sub("", str(reply or "")).strip()
    text = _LEAD.sub("", text).strip()
    m = re.match(r"^([01])(?![\d.]\d)", text)
    if m is None:
        return None
    rest = text[1:]
    if re.search(r"(?<![\d.])[01](?![\d.]\d)", rest):   # a second verdict digit: ambiguous
        return None
    return int(m.group(1))


def default_cache_path() -> Path:
    from ..io.cache import cache_root
    return cache_root() / "judge-verdicts.sqlite"


class VerdictCache:
    """Judge verdicts in an SQLite file (WAL), safe to share between threads."""

    def __init__(self, path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, verdict INTEGER NOT NULL,"
                             " reply TEXT NOT NULL, model TEXT NOT NULL, created REAL NOT NULL)")
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise SarlangError(f"{self.path}: cannot open the judge verdict cache ({exc})") from None
        self._lock = threading.Lock()

    @staticmethod
    def key(question: str, label: str, predict: str, model: str, prompt: str = "paper-text") -> str:
        """The cache key; "paper-text" keys are those of caches written before there was a choice."""
        h = hashlib.sha256()
        parts = (question, label, predict, model) + (() if prompt == "paper-text" else (prompt,))
        for part in parts:
            data = str(part).encode("utf-8", "surrogatepass")
            h.update(len(data).to_bytes(8, "little") + data)   # length-prefixed: no ambiguous joins
        return h.hexdigest()

    def get(self, key: str) -> Optional[Tuple[int, str]]:
        with self._lock:
            row = self._db.execute("SELECT verdict, reply FROM verdicts WHERE key = ?", (key,)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def put(self, key: str, verdict: int, reply: str, model: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?)",
                             (key, int(verdict), reply, model, time.time()))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass(frozen=True)
class JudgeVerdict:
    verdict: Optional[int]          # 1 match, 0 no match, None unreadable / failed
    reply: str
    cached: bool = False
    error: Optional[str] = None
    unreachable: bool = False       # the endpoint failed (not a reply we could not read)


class LLMJudge:
    """Asks an OpenAI-compatible endpoint the paper's question with ``prompt`` (a JUDGE_PROMPTS
    name). Never raises for endpoint failures (they become ``verdict=None`` with ``error``, and
    ``unreachable`` set); only cancellation propagates."""

    def __init__(self, endpoint_url: str, model: str = "gpt-4o-mini", *, api_key: Optional[str] = None,
                 timeout: float = 30, max_retries: int = 3, cache: Optional[VerdictCache] = None,
                 backoff: float = 0.5, prompt: str = "released") -> None:
        from ..vlm.openai_backend import OpenAIBackend
        if prompt not in JUDGE_PROMPTS:
            raise SarlangError(f"judge prompt must be one of {', '.join(JUDGE_PROMPTS)}, got {prompt!r}")
        self.model = model
        self.prompt = prompt
        self.cache = cache
        self._backend = OpenAIBackend(endpoint_url, model, api_key=api_key, timeout=timeout,
                                      max_retries=max_retries, backoff=backoff)

    @property
    def endpoint(self) -> str:
        return self._backend.endpoint

    def request(self, question: str, label: str, predict: str) -> Dict[str, Any]:
        """The chat-completions body sent for one answer."""
        text = JUDGE_PROMPTS[self.prompt].format(question=question, ground_truth=label, prediction=predict)
        if self.prompt == "released":
            return {"model": self.model, "max_tokens": MAX_TOKENS,
                    "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}
        return {"model": self.model, "max_tokens": MAX_TOKENS, "temperature": 0.0,
                "messages": [{"role": "user", "content": text}]}

    def judge(self, question: str, label: str, predict: str, *,
              cancel: Optional[CancelToken] = None) -> JudgeVerdict:
        key = VerdictCache.key(question, label, predict, self.model, self.prompt) if self.cache is not None else ""
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return JudgeVerdict(hit[0], hit[1], cached=True)
        try:
            reply = self._backend.send(self.request(question, label, predict), cancel=cancel).text
        except CancelledError:
            raise
        except EndpointError as exc:   # endpoint down, 5xx after retries, timeouts: the run goes on
            return JudgeVerdict(None, "", error=str(exc) or type(exc).__name__, unreachable=True)
        except Exception as exc:
            return JudgeVerdict(None, "", error=str(exc) or type(exc).__name__)
        verdict = parse_verdict(reply)
        if verdict is None:
            return JudgeVerdict(None, reply, error=f"unreadable judge reply: {reply[:80]!r}")
        if self.cache is not None:
            self.cache.put(key, verdict, reply, self.model)
        return JudgeVerdict(verdict, reply)
