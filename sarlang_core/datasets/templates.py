"""Template VQA from detection boxes: the paper's five question types (Table 5).

    cfg = TemplateConfig(seed=0)                        # ~9 items per image, Table 4 mix
    for item in generate(images, group_boxes(boxes), cfg):
        ...                                             # Item(source="template", meta={"template": id})

Question types and answers (answers are lower case; class names as in the annotations):

* identification - "yes"/"no". Sub-kinds: presence ("Is there a ship in the image?"; absent
  classes give the "no" answers when ``negatives``), position-conditioned ("Is there a ship in the
  top part of the image?": yes when a box centre of that class lies in that half; halves split at
  0.5 of the width/height) and other-categories ("Are there any other categories apart from
  ships in the image?"). The picks are balanced: half (rounded up) from the yes pool, the rest
  from the no pool, topping up from the other pool when one runs short.
* classification - "What is the main object in the image?" -> the class with most boxes (asked
  only when that maximum is unique); "What are the categories visible in the image?" -> the
  present classes by count (descending) then name, joined by ", ".
* counting - "How many ships are there in the image?" -> the number of boxes of that class.
* positioning - "Where are most ships positioned within the image?" -> top/center/bottom/left/
  right. Rule (:func:`position_of`): the mean of that class's box centres in normalised image
  coordinates (cx, cy in [0, 1], y down); dx = cx - 0.5, dy = cy - 0.5; "center" when both
  |dx| and |dy| are < 1/6; else the axis with the larger offset wins (a tie goes to the vertical
  axis): left/right by the sign of dx, top/bottom by the sign of dy.
* referring - "What is the object present in the area [x, y, w, h]?" with the box in original
  pixels, one decimal -> the class. Regions whose rounded box is shared by boxes of different
  classes are never asked (the answer would be ambiguous).

Per image, ``per_image`` slots are split over the types by ``mix`` weights with systematic
sampling (each type gets floor or ceil of its share; the expected share is exact); a type that
has fewer distinct questions than slots hands the rest to the other types (largest weight first).
Everything random comes from a per-image ``random.Random`` seeded by ``seed`` and a stable hash
(blake2b) of the image id, so an image's items do not depend on the order or the other images.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from .records import SARDET_CATEGORIES, BoxRecord, ImageRecord, Item

TEMPLATE_TYPES = ("identification", "classification", "counting", "positioning", "referring")
# Table 4 sample counts: ~4 identification, 1 classification, 1 counting, 2 referring, 1 positioning of 9.
DEFAULT_MIX = {"identification": 484_620, "classification": 132_525, "counting": 117_382,
               "referring": 221_450, "positioning": 106_171}
CLASSES_PREFIX = "The classes are: tank, car, aircraft, harbor, bridge, ship."
POSITIONS = ("top", "center", "bottom", "left", "right")
HALVES = ("top", "bottom", "left", "right")
CENTER_BAND = 1.0 / 6.0

POOLS: Dict[str, Sequence[str]] = {
    "identification.presence": (
        "Is there {a_cat} in the image?",
        "Are there any {cats} in the image?",
        "Does {a_cat} exist in the image?",
        "Can you see any {cats} in this image?",
        "Is any {cat} visible in the image?",
    ),
    "identification.position": (
        "Is there {a_cat} in the {half} part of the image?",
        "Is there {a_cat} located on the {half} side of the image?",
        "Are there any {cats} in the {half} half of the image?",
    ),
    "identification.other": (
        "Are there any other categories apart from {cats} in the image?",
        "Besides {cats}, are there objects of other categories in the image?",
        "Does the image contain any category other than {cat}?",
    ),
    "classification.main": (
        "What is the main object in the image?",
        "What is the main category of objects in the image?",
        "Which object category dominates this image?",
        "What kind of object appears most often in the image?",
    ),
    "classification.list": (
        "What are the categories visible in the image?",
        "Which object categories can be seen in the image?",
        "List the object categories present in the image.",
    ),
    "counting": (
        "How many {cats} are there in the image?",
        "How many {cats} are visible in the image?",
        "How many {cats} are located in the image?",
        "What is the number of {cats} in the image?",
        "Count the {cats} in the image.",
    ),
    "positioning": (
        "Where are most {cats} positioned within the image?",
        "Where are the most {cats} located in the image?",
        "In which part of the image are most {cats} found?",
        "Where in the image are the {cats} mostly located?",
    ),
    "positioning.one": (
        "Where is the {cat} positioned within the image?",
        "Where is the {cat} located in the image?",
        "In which part of the image is the {cat} found?",
    ),
    "referring": (
        "What is the object present in the area {region}?",
        "What is the object in the area {region}?",
        "Which category does the object in the region {region} belong to?",
        "Identify the object located in the area {region}.",
    ),
}

_IRREGULAR_PLURALS = {"aircraft": "aircraft"}


def plural(cat: str) -> str:
    if cat in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[cat]
    if cat.endswith(("s", "x", "ch", "sh")):
        return cat + "es"
    if cat.endswith("y") and cat[-2:-1] not in "aeiou":
        return cat[:-1] + "ies"
    return cat + "s"


def _article(cat: str) -> str:
    return ("an " if cat[:1].lower() in "aeiou" else "a ") + cat


def position_of(cx: float, cy: float) -> str:
    """Position word for a mean box centre in normalised coords (0..1, y down); see module doc."""
    dx, dy = cx - 0.5, cy - 0.5
    ax, ay = abs(dx), abs(dy)
    if ax < CENTER_BAND and ay < CENTER_BAND:
        return "center"
    if ax > ay:
        return "left" if dx < 0 else "right"
    return "top" if dy < 0 else "bottom"


def format_region(bbox: Sequence[float]) -> str:
    x, y, w, h = bbox
    return f"[{x:.1f}, {y:.1f}, {w:.1f}, {h:.1f}]"


@dataclass
class TemplateConfig:
    seed: int = 0
    per_image: int = 9
    mix: Dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    negatives: bool = True                 # presence questions about absent classes ("no")
    with_classes_prefix: bool = False      # prepend CLASSES_PREFIX (as when mixing subsets)
    categories: Sequence[str] = SARDET_CATEGORIES   # the universe negatives are drawn from

    def __post_init__(self):
        bad = [t for t in self.mix if t not in TEMPLATE_TYPES]
        if bad:
            raise ValueError(f"unknown template type(s) in mix: {', '.join(sorted(bad))}")
        if any(w < 0 for w in self.mix.values()) or self.per_image < 0:
            raise ValueError("mix weights and per_image must be >= 0")


def group_boxes(boxes: Iterable[BoxRecord]) -> Dict[str, List[BoxRecord]]:
    out: Dict[str, List[BoxRecord]] = {}
    for b in boxes:
        out.setdefault(b.image_id, []).append(b)
    return out


def image_rng(seed: int, image_id: str) -> random.Random:
    h = blake2b(f"{seed}\x00{image_id}".encode("utf-8"), digest_size=8).digest()
    return random.Random(int.from_bytes(h, "big"))


class _Words:
    """Per-category strings, built once per category."""
    __slots__ = ("cat", "cats", "a_cat")

    def __init__(self, cat: str):
        self.cat, self.cats, self.a_cat = cat, plural(cat), _article(cat)


def generate(images: Iterable[ImageRecord], boxes_by_image: Mapping[str, Sequence[BoxRecord]],
             config: Optional[TemplateConfig] = None) -> Iterator[Item]:
    """Stream template items, image by image in the order given. See the module doc."""
    cfg = config or TemplateConfig()
    types = [t for t in TEMPLATE_TYPES if cfg.mix.get(t, 0) > 0]
    total_w = float(sum(cfg.mix[t] for t in types))
    shares = [cfg.per_image * cfg.mix[t] / total_w for t in types] if total_w else []
    by_weight = sorted(range(len(types)), key=lambda i: -cfg.mix[types[i]])
    universe = tuple(cfg.categories)
    prefix = (CLASSES_PREFIX if universe == SARDET_CATEGORIES
              else f"The classes are: {', '.join(universe)}.") + " "
    use_prefix = cfg.with_classes_prefix
    words: Dict[str, _Words] = {}
    pools = {k: [(f"{k}/{i}", t) for i, t in enumerate(v)] for k, v in POOLS.items()}
    empty: Sequence[BoxRecord] = ()

    def W(cat):
        w = words.get(cat)
        if w is None:
            w = words[cat] = _Words(cat)
        return w

    for img in images:
        iid = img.id
        rng = image_rng(cfg.seed, iid)
        rnd = rng.random
        boxes = boxes_by_image.get(iid, empty)
        iw = float(img.width) if img.width and img.width > 0 else 0.0
        ih = float(img.height) if img.height and img.height > 0 else 0.0
        # per class: [count, sum cx, sum cy, top, bottom, left, right] (halves as 0/1 flags)
        stats: Dict[str, list] = {}
        regions: Dict[str, tuple] = {}   # rounded region -> (category, ok)
        for b in boxes:
            x, y, w, h = b.bbox
            cat = b.category
            s = stats.get(cat)
            if s is None:
                s = stats[cat] = [0, 0.0, 0.0, 0, 0, 0, 0]
            s[0] += 1
            if iw and ih:
                cx = (x + w / 2.0) / iw
                cy = (y + h / 2.0) / ih
                s[1] += cx
                s[2] += cy
                if cy < 0.5:
                    s[3] = 1
                else:
                    s[4] = 1
                if cx < 0.5:
                    s[5] = 1
                else:
                    s[6] = 1
            key = f"[{x:.1f}, {y:.1f}, {w:.1f}, {h:.1f}]"
            prev = regions.get(key)
            if prev is None:
                regions[key] = (cat, True)
            elif prev[0] != cat:
                regions[key] = (prev[0], False)
        present = sorted(stats)
        geo = bool(iw and ih)

        # candidates per type (light tuples), then the allocation
        # per type: (yes, no) candidate lists, (kind, answer) pairs, or category / region names
        cands: Dict[str, Any] = {}
        for t in types:
            if t == "identification":
                yes: List[Tuple[str, str, Optional[str], str]] = []
                no: List[Tuple[str, str, Optional[str], str]] = []
                for c in present:
                    yes.append(("presence", c, None, "yes"))
                    if len(present) > 1:
                        yes.append(("other", c, None, "yes"))
                    else:
                        no.append(("other", c, None, "no"))
                    if geo:
                        s = stats[c]
                        for k, side in enumerate(HALVES):
                            (yes if s[3 + k] else no).append(("position", c, side, "yes" if s[3 + k] else "no"))
                if cfg.negatives:
                    for c in universe:
                        if c not in stats:
                            no.append(("presence", c, None, "no"))
                cands[t] = (yes, no)
            elif t == "classification":
                cl = []
                if present:
                    ranked = sorted(present, key=lambda c: (-stats[c][0], c))
                    if len(ranked) == 1 or stats[ranked[0]][0] > stats[ranked[1]][0]:
                        cl.append(("main", ranked[0]))
                    cl.append(("list", ", ".join(ranked)))
                cands[t] = cl
            elif t == "counting" or (t == "positioning" and geo):
                cands[t] = present
            elif t == "referring":
                cands[t] = [k for k, v in regions.items() if v[1]]
            else:
                cands[t] = []
        avail = [sum(map(len, cands[t])) if t == "identification" else len(cands[t]) for t in types]

        u = rnd()
        quota, acc, prev_floor = [], u, int(u)
        for sh in shares:
            acc += sh
            f = int(acc)
            quota.append(f - prev_floor)
            prev_floor = f
        take = [min(q, a) for q, a in zip(quota, avail)]
        left = cfg.per_image - sum(take)
        if left > 0:
            for i in by_weight:
                extra = min(left, avail[i] - take[i])
                if extra > 0:
                    take[i] += extra
                    left -= extra
                    if not left:
                        break

        for t, n in zip(types, take):
            if not n:
                continue
            cand = cands[t]
            if t == "identification":
                yes, no = cand
                ny = min((n + 1) // 2, len(yes))
                nn = min(n - ny, len(no))
                ny = min(n - nn, len(yes))
                picks = rng.sample(yes, ny) + rng.sample(no, nn)
                for kind, cat, half, ans in picks:
                    pool = pools["identification." + kind]
                    tid, tpl = pool[int(rnd() * len(pool))]
                    w = W(cat)
                    q = tpl.format(cat=w.cat, cats=w.cats, a_cat=w.a_cat, half=half)
                    yield Item(iid, t, prefix + q if use_prefix else q, ans, "template", {"template": tid})
            elif t == "classification":
                for kind, ans in cand[:n]:
                    pool = pools["classification." + kind]
                    tid, q = pool[int(rnd() * len(pool))]
                    yield Item(iid, t, prefix + q if use_prefix else q, ans, "template", {"template": tid})
            elif t == "counting":
                pool = pools["counting"]
                for cat in (rng.sample(cand, n) if n < len(cand) else cand):
                    tid, tpl = pool[int(rnd() * len(pool))]
                    q = tpl.format(cats=W(cat).cats)
                    yield Item(iid, t, prefix + q if use_prefix else q, str(stats[cat][0]), "template",
                               {"template": tid})
            elif t == "positioning":
                for cat in (rng.sample(cand, n) if n < len(cand) else cand):
                    s = stats[cat]
                    pool = pools["positioning.one" if s[0] == 1 else "positioning"]
                    tid, tpl = pool[int(rnd() * len(pool))]
                    w = W(cat)
                    q = tpl.format(cat=w.cat, cats=w.cats)
                    yield Item(iid, t, prefix + q if use_prefix else q, position_of(s[1] / s[0], s[2] / s[0]),
                               "template", {"template": tid})
            else:  # referring
                pool = pools["referring"]
                for key in (rng.sample(cand, n) if n < len(cand) else cand):
                    tid, tpl = pool[int(rnd() * len(pool))]
                    q = tpl.format(region=key)
                    yield Item(iid, t, prefix + q if use_prefix else q, regions[key][0], "template",
                               {"template": tid})
