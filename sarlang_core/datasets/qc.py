"""Quality control of dataset items: flags a reviewer can read and act on.

    seen = DuplicateIndex()
    for item, flags in run_qc(items, boxes_by_image):
        for f in flags:
            print(f.code, f.message)

Checks, one ``Flag(code, message)`` each:

* ``colour_word``   an answer / caption names a colour (SAR images are grey: they cannot show one)
* ``bad_answer``    an answer outside its question type's vocabulary
* ``count_mismatch`` a counting answer that disagrees with the detection boxes of the image
* ``empty``         an empty question, answer or caption
* ``too_long``      a text over the word limit of its type
* ``unknown_type``  an item type the dataset does not define
* ``duplicate``     the same normalised question (VQA) or caption asked twice about one image
* ``near_duplicate`` a caption whose words overlap another caption of the image (Jaccard >= 0.9)

Duplicates are found against a ``DuplicateIndex`` passed as ``seen``: every checked item is
added to it, so the first of two duplicates passes and the second is flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from .records import ITEM_TYPES, SARDET_CATEGORIES, BoxRecord, Item

CAPTION_TYPES = ("caption_concise", "caption_detailed")

# Colours a SAR backscatter image cannot show. Grey levels (white, black, grey, bright, dark) are
# deliberately absent: SAR images do show those.
COLOUR_WORDS = (
    "red", "green", "blue", "yellow", "orange", "purple", "violet", "pink", "brown", "cyan",
    "magenta", "turquoise", "beige", "golden", "reddish", "greenish", "bluish", "yellowish",
    "brownish", "colourful", "colorful", "multicoloured", "multicolored",
)
_COLOUR_RE = re.compile(r"\b(" + "|".join(COLOUR_WORDS) + r")\b", re.IGNORECASE)


def colour_words_in(text: str) -> List[str]:
    """The colour words of ``text`` that SAR cannot show, lower case, sorted, once each."""
    return sorted({m.group(1).lower() for m in _COLOUR_RE.finditer(text or "")})

NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)
POSITIONS = ("top", "center", "bottom", "left", "right")
YES_NO = ("yes", "no")

# Word limits of answers (captions: of the caption) per type; questions share one limit.
DEFAULT_MAX_WORDS: Dict[str, int] = {
    "caption_concise": 40, "caption_detailed": 200,
    "identification": 5, "positioning": 5, "counting": 5, "classification": 10, "referring": 10,
    "general": 200,
}
_TOKEN_RE = re.compile(r"[a-z0-9]+")
_IMAGE_TAG_RE = re.compile(r"<image>", re.IGNORECASE)
_PREAMBLE_RE = re.compile(r"^\s*the classes are:[^.?]*[.]", re.IGNORECASE)


@dataclass(frozen=True)
class Flag:
    code: str
    message: str


@dataclass(frozen=True)
class QCConfig:
    max_words: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_WORDS))
    max_question_words: int = 80
    categories: Sequence[str] = SARDET_CATEGORIES
    near_duplicate_jaccard: float = 0.9


# ----------------------------------------------------------------------------- text helpers
def normalise_text(text: str) -> str:
    """Lower case, ``<image>`` tags and punctuation removed, whitespace collapsed."""
    return " ".join(_TOKEN_RE.findall(_IMAGE_TAG_RE.sub(" ", text or "").lower()))


def _tokens(text: str) -> frozenset:
    return frozenset(_TOKEN_RE.findall((text or "").lower()))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def parse_count(answer: str) -> Optional[int]:
    """``"3"``, ``"three"``, ``"3."`` -> 3; anything else -> None."""
    a = normalise_text(answer)
    if a.isdigit():
        return int(a)
    if a in NUMBER_WORDS:
        return NUMBER_WORDS.index(a)
    return None


def _category_of(word: str, categories: Sequence[str]) -> Optional[str]:
    """``"ship"``, ``"ships"``, ``"harbors"`` -> the category; else None."""
    for c in categories:
        c_l = c.lower()
        if word in (c_l, c_l + "s", c_l + "es"):
            return c
    return None


def question_category(item: Item, categories: Sequence[str]) -> Optional[str]:
    """The category a counting question asks about: ``meta["category"]``, else the one category
    word of the question (None when there is none or more than one)."""
    cat = item.meta.get("category") if isinstance(item.meta, dict) else None
    if cat:
        return str(cat)
    # "The classes are: tank, car, ..." is a preamble, not the question.
    q = normalise_text(_PREAMBLE_RE.sub(" ", _IMAGE_TAG_RE.sub(" ", item.question or "")))
    found = {c for w in q.split() if (c := _category_of(w, categories))}
    return found.pop() if len(found) == 1 else None


def _words(text: str) -> int:
    return len((text or "").split())


# ----------------------------------------------------------------------------- duplicates
class DuplicateIndex:
    """What has been checked so far, per image: normalised questions and caption token sets."""

    def __init__(self, near_duplicate_jaccard: float = 0.9):
        self.threshold = near_duplicate_jaccard
        self._keys: Dict[Tuple[str, str, str], str] = {}
        self._captions: Dict[str, List[Tuple[frozenset, str]]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _label(self, item: Item) -> str:
        return f"item #{item.id}" if item.id is not None else f"the {self._count + 1}. item checked"

    def check(self, item: Item) -> List[Flag]:
        """Flags of ``item`` against what was added before (does not add it)."""
        if item.type in CAPTION_TYPES:
            text = item.answer
            key = (item.image_id, "caption", normalise_text(text))
            if not key[2]:
                return []
            if key in self._keys:
                return [Flag("duplicate", f"The same caption was already given for image "
                                          f"{item.image_id} ({self._keys[key]}).")]
            toks = _tokens(text)
            best, who = 0.0, ""
            for other, label in self._captions.get(item.image_id, ()):
                j = jaccard(toks, other)
                if j > best:
                    best, who = j, label
            if best >= self.threshold:
                return [Flag("near_duplicate", f"This caption shares {best:.0%} of its words with "
                                               f"another caption of image {item.image_id} ({who}); "
                                               f"keep only one of them.")]
            return []
        key = (item.image_id, "question", normalise_text(item.question))
        if key[2] and key in self._keys:
            return [Flag("duplicate", f"The same question was already asked about image "
                                      f"{item.image_id} ({self._keys[key]}).")]
        return []

    def add(self, item: Item) -> None:
        label = self._label(item)
        if item.type in CAPTION_TYPES:
            key = (item.image_id, "caption", normalise_text(item.answer))
            self._captions.setdefault(item.image_id, []).append((_tokens(item.answer), label))
        else:
            key = (item.image_id, "question", normalise_text(item.question))
        if key[2]:
            self._keys.setdefault(key, label)
        self._count += 1


# ----------------------------------------------------------------------------- the checks
def _vocabulary_flag(item: Item, categories: Sequence[str]) -> Optional[Flag]:
    a = normalise_text(item.answer)
    if not a:
        return None   # reported as empty
    t = item.type
    if t == "identification" and a not in YES_NO:
        return Flag("bad_answer", f"An identification question is answered 'yes' or 'no', "
                                  f"not '{item.answer.strip()}'.")
    if t == "positioning" and a not in POSITIONS:
        return Flag("bad_answer", f"A positioning answer is one of {', '.join(POSITIONS)}, "
                                  f"not '{item.answer.strip()}'.")
    if t == "counting" and parse_count(item.answer) is None:
        return Flag("bad_answer", f"A counting answer is a number (digits, or a word from zero "
                                  f"to twenty), not '{item.answer.strip()}'.")
    if t == "referring" and _category_of(a, categories) is None:
        return Flag("bad_answer", f"A referring answer names one known category "
                                  f"({', '.join(categories)}), not '{item.answer.strip()}'.")
    if t == "classification" and not _category_list(item.answer, categories):
        return Flag("bad_answer", f"A classification answer names a known category, or several separated by "
                                  f"commas ({', '.join(categories)}), not '{item.answer.strip()}'.")
    return None


def _category_list(answer: str, categories: Sequence[str]) -> bool:
    """True when ``answer`` is one known category or a list of them ("aircraft, ship", "car and tank"):
    the paper's "What are the categories visible in the image?" (Table 4) is answered with a list."""
    parts = [normalise_text(p) for p in re.split(r",|\band\b", answer.lower())]
    parts = [p for p in parts if p]
    return bool(parts) and all(_category_of(p, categories) is not None for p in parts)


def check_item(item: Item, boxes: Optional[Iterable[BoxRecord]] = None, *,
               seen: Optional[DuplicateIndex] = None,
               config: Optional[QCConfig] = None) -> List[Flag]:
    """Every flag of one item. ``boxes``: the detection boxes of its image (None: unknown, so
    counts are not checked; ``[]``: the image has no objects). ``seen``: checked items so far;
    the item is added to it after checking."""
    cfg = config or QCConfig()
    flags: List[Flag] = []
    is_caption = item.type in CAPTION_TYPES
    if item.type not in ITEM_TYPES:
        flags.append(Flag("unknown_type", f"'{item.type}' is not a dataset item type "
                                          f"(one of {', '.join(ITEM_TYPES)})."))

    # empty / over-long
    if is_caption:
        if not (item.answer or "").strip():
            flags.append(Flag("empty", "The caption is empty."))
    else:
        if not normalise_text(item.question):
            flags.append(Flag("empty", "The question is empty."))
        if not (item.answer or "").strip():
            flags.append(Flag("empty", "The answer is empty."))
        nq = _words(item.question)
        if nq > cfg.max_question_words:
            flags.append(Flag("too_long", f"The question has {nq} words; at most "
                                          f"{cfg.max_question_words} are allowed."))
    limit = cfg.max_words.get(item.type)
    na = _words(item.answer)
    if limit is not None and na > limit:
        what = "caption" if is_caption else "answer"
        flags.append(Flag("too_long", f"The {what} has {na} words; a {item.type} {what} has at "
                                      f"most {limit}."))

    # colours SAR cannot show
    found = colour_words_in(item.answer)
    if found:
        what = "caption" if is_caption else "answer"
        flags.append(Flag("colour_word", f"The {what} mentions {', '.join(repr(w) for w in found)}: "
                                         f"SAR images have no colours, so this cannot be seen."))

    # vocabulary and counts
    v = _vocabulary_flag(item, cfg.categories)
    if v is not None:
        flags.append(v)
    if item.type == "counting" and boxes is not None:
        n = parse_count(item.answer)
        cat = question_category(item, cfg.categories)
        if n is not None and cat is not None:
            actual = sum(1 for b in boxes if b.category == cat and b.image_id == item.image_id)
            if actual != n:
                flags.append(Flag("count_mismatch", f"The answer says {n} {cat}(s) but the image "
                                                    f"has {actual} {cat} box(es)."))

    if seen is not None:
        flags.extend(seen.check(item))
        seen.add(item)
    return flags


def run_qc(items: Iterable[Item], boxes_by_image: Optional[Mapping[str, Sequence[BoxRecord]]] = None,
           *, config: Optional[QCConfig] = None,
           seen: Optional[DuplicateIndex] = None) -> Iterator[Tuple[Item, List[Flag]]]:
    """Stream ``(item, flags)`` for every item, duplicates included. With ``boxes_by_image``
    the mapping is the whole annotation: an image missing from it has no boxes. Without it,
    counts are not checked."""
    cfg = config or QCConfig()
    index = seen if seen is not None else DuplicateIndex(cfg.near_duplicate_jaccard)
    for item in items:
        boxes = None if boxes_by_image is None else boxes_by_image.get(item.image_id, ())
        yield item, check_item(item, boxes, seen=index, config=cfg)
