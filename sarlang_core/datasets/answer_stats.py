"""Answer distributions per item type, counted in SQL on the curation store.

* Question types (identification, classification, positioning, referring, general): the top
  answers with count and share, and the "other" remainder. Answers are counted after
  normalisation: case, runs of whitespace and one trailing full stop are ignored ("Yes." ==
  " yes"); the label shown is the most frequent spelling.
* Counting: a numeric histogram of the first number in each answer ("There are 5 ships." -> 5;
  number words, "no"/"none" -> 0), sorted by number, plus how many had none.
* Captions: the length distribution in words (mean, median, p95, min, max, histogram bins).

SQLite groups the non-caption answers through a covering partial index on (type, status, answer),
so only the distinct answers reach Python; caption lengths are grouped in SQL by word count (the
store's ``sarlang_words`` SQL function).
On 1M items this takes well under a second (see BENCHMARKS.md).

    dist = answer_distribution(store, status=("accepted", "edited"))
    dist["counting"].numeric      # ((0, 120), (1, 340), ...)
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..text_numbers import parse_number
from .records import ITEM_TYPES, STATUSES
from .store_common import _check, _values

log = logging.getLogger(__name__)

CAPTION_TYPES = ("caption_concise", "caption_detailed")
NUMERIC_TYPES = ("counting",)
LENGTH_BINS = 20


@dataclass(frozen=True)
class AnswerCount:
    answer: str      # the most frequent spelling of this normalised answer
    count: int
    share: float     # of all the type's items


@dataclass(frozen=True)
class LengthStats:
    """Answer length in words (``str.split()``: runs of any whitespace separate words)."""
    mean: float
    median: float
    p95: int         # nearest-rank 95th percentile
    min: int
    max: int
    bins: Tuple[Tuple[int, int, int], ...]   # (lo, hi inclusive, count), equal widths, lo ascending


@dataclass(frozen=True)
class AnswerDistribution:
    type: str
    kind: str                                  # "answers" | "numeric" | "length"
    total: int                                 # items of this type (matching the status filter)
    distinct: int                              # distinct normalised answers (numbers / lengths)
    top: Tuple[AnswerCount, ...] = ()          # kind "answers": most frequent first
    other: int = 0                             # kind "answers": items whose answer is not in ``top``
    numeric: Tuple[Tuple[int, int], ...] = ()  # kind "numeric": (number, count), number ascending
    unparsed: int = 0                          # kind "numeric": answers without a number
    length: Optional[LengthStats] = field(default=None)

    @property
    def other_share(self) -> float:
        return self.other / self.total if self.total else 0.0

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready: top as [{answer, count, share}], numeric as [[number, count]], bins as
        [{lo, hi, count}]."""
        d = asdict(self)
        d["top"] = [asdict(a) for a in self.top]
        d["other_share"] = self.other_share
        d["numeric"] = [list(p) for p in self.numeric]
        if self.length is not None:
            d["length"]["bins"] = [dict(lo=lo, hi=hi, count=n) for lo, hi, n in self.length.bins]
        return d


def normalise(answer: str) -> str:
    """The counting key of an answer: lower case, single spaces, no trailing full stop."""
    text = " ".join(answer.split()).lower()
    return text[:-1].rstrip() if text.endswith(".") else text


def first_number(answer: str) -> Optional[int]:
    """The first count in an answer (digits or number words; "no"/"none" first -> 0)."""
    return parse_number(answer)


def answer_distribution(store, *, types: Optional[Iterable[str]] = None, top: int = 20,
                        status=None) -> Dict[str, AnswerDistribution]:
    """Per item type (those present, or ``types``), in ``ITEM_TYPES`` order. ``status``: a
    status or a list of them (None: all items). ``top``: how many answers to list per type."""
    wanted = list(ITEM_TYPES) if types is None else _values(types)
    _check("item type", wanted, ITEM_TYPES)
    params = [] if status is None else _values(status)
    _check("status", params, STATUSES)
    out: Dict[str, AnswerDistribution] = {}
    grouped: Dict[str, List[Tuple[str, int]]] = {}
    for t, answer, n in store.answer_counts([t for t in wanted if t not in CAPTION_TYPES], params):
        grouped.setdefault(t, []).append((answer, n))
    for t, pairs in grouped.items():
        out[t] = _numeric(t, pairs) if t in NUMERIC_TYPES else _answers(t, pairs, max(0, int(top)))
    hist: Dict[str, List[Tuple[int, int]]] = {}
    for t, words, n in store.answer_word_counts([t for t in wanted if t in CAPTION_TYPES], params):
        hist.setdefault(t, []).append((int(words), n))
    for t, lengths in hist.items():
        out[t] = _lengths(t, sorted(lengths))
    return {t: out[t] for t in ITEM_TYPES if t in out}


def _answers(t: str, pairs: List[Tuple[str, int]], top: int) -> AnswerDistribution:
    counts: Dict[str, int] = {}
    spellings: Dict[Tuple[str, str], int] = {}   # (key, spelling) -> count, summed over statuses
    for answer, n in pairs:
        key = normalise(answer)
        counts[key] = counts.get(key, 0) + n
        spelling = (key, " ".join(answer.split()))
        spellings[spelling] = spellings.get(spelling, 0) + n
    best: Dict[str, Tuple[int, str]] = {}        # key -> (count, spelling) of its most frequent spelling
    for (key, label), n in spellings.items():
        if (n, label) > best.get(key, (0, "")):
            best[key] = (n, label)
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    listed = tuple(AnswerCount(best[k][1], n, n / total) for k, n in ranked)
    return AnswerDistribution(t, "answers", total, len(counts), top=listed,
                              other=total - sum(a.count for a in listed))


def _numeric(t: str, pairs: List[Tuple[str, int]]) -> AnswerDistribution:
    numbers: Dict[int, int] = {}
    unparsed = 0
    for answer, n in pairs:
        value = first_number(answer)
        if value is None:
            unparsed += n
        else:
            numbers[value] = numbers.get(value, 0) + n
    total = sum(numbers.values()) + unparsed
    return AnswerDistribution(t, "numeric", total, len(numbers), numeric=tuple(sorted(numbers.items())),
                              unparsed=unparsed)


def _lengths(t: str, hist: List[Tuple[int, int]]) -> AnswerDistribution:
    """``hist``: (words, count) sorted by words."""
    total = sum(n for _, n in hist)
    mean = sum(w * n for w, n in hist) / total

    def at_rank(rank: int) -> int:      # the rank-th smallest length (1-based)
        seen = 0
        for w, n in hist:
            seen += n
            if seen >= rank:
                return w
        return hist[-1][0]

    median = (at_rank((total + 1) // 2) + at_rank(total // 2 + 1)) / 2
    lo, hi = hist[0][0], hist[-1][0]
    width = max(1, math.ceil((hi - lo + 1) / LENGTH_BINS))
    bins = [[lo + k * width, lo + (k + 1) * width - 1, 0] for k in range((hi - lo) // width + 1)]
    for w, n in hist:
        bins[(w - lo) // width][2] += n
    bin_rows = tuple((b_lo, b_hi, count) for b_lo, b_hi, count in bins)
    stats = LengthStats(mean, median, at_rank(math.ceil(0.95 * total)), lo, hi, bin_rows)
    return AnswerDistribution(t, "length", total, len(hist), length=stats)
