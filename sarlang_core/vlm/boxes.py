"""Boxes between coordinate systems: scene pixels <-> what a model saw and what it wrote.

Scene pixels: full resolution, x right, y down, boxes ``(x0, y0, x1, y1)`` as floats (pixel
(i, j) covers [i, i+1) x [j, j+1)). A ``ModelView`` says which part of the scene was sent
(``crop``: whole scene, viewport or drawn region, in scene pixels) and the size the model saw it
at (``input_size``, after every resize: ours and the model's own, see ``model_input_size``).

Conventions (model families disagree; FIELD_NOTES "Boxes and coordinates"):
  ``qwen2.5-vl``  absolute pixels of the resized model input, (x1, y1, x2, y2)
  ``qwen2-vl``    0-1000 normalised over the input (also Qwen3-VL, InternVL, EarthDial)
  ``geochat``     0-100 normalised (GeoChat, MiniGPT-v2)
  ``sarlang``     [x, y, w, h] in original-image pixels: full-resolution pixels of the crop,
                  relative to its top-left corner (SARLANG-1M region questions; written with one
                  decimal by ``prompts.format_region``)
Conversions are exact (no rounding, no clipping); corners come back ordered (x0 <= x1, y0 <= y1).
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import RequestError

log = logging.getLogger(__name__)

Box = Tuple[float, float, float, float]

CONVENTIONS = ("qwen2.5-vl", "qwen2-vl", "geochat", "sarlang")
_ALIASES = {
    "qwen2.5-vl": "qwen2.5-vl", "qwen2_5_vl": "qwen2.5-vl", "qwen2_5-vl": "qwen2.5-vl", "absolute": "qwen2.5-vl",
    "qwen2-vl": "qwen2-vl", "qwen2_vl": "qwen2-vl", "qwen3-vl": "qwen2-vl", "qwen3_vl": "qwen2-vl",
    "internvl": "qwen2-vl", "earthdial": "qwen2-vl", "norm1000": "qwen2-vl",
    "geochat": "geochat", "minigpt-v2": "geochat", "norm100": "geochat",
    "sarlang": "sarlang", "coco": "sarlang", "xywh": "sarlang",
}
_SCALE = {"qwen2-vl": 1000.0, "geochat": 100.0}


def canonical_convention(name: str) -> str:
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise RequestError(f"unknown box convention {name!r}; known: {', '.join(CONVENTIONS)}")
    return _ALIASES[key]


def convention_for_model(model_name: str) -> str:
    """Best guess of a model's box convention from its name or folder (e.g. 'Qwen/Qwen2.5-VL-7B')."""
    n = re.sub(r"[\s_]", "-", str(model_name).lower())
    if "qwen2.5-vl" in n or "qwen2-5-vl" in n:
        return "qwen2.5-vl"
    if "geochat" in n or "minigpt" in n:
        return "geochat"
    if any(k in n for k in ("qwen2-vl", "qwen3-vl", "internvl", "earthdial")):
        return "qwen2-vl"
    return "sarlang"


@dataclass(frozen=True)
class ModelView:
    """What was sent: ``crop`` (x, y, w, h) in scene pixels, seen by the model at ``input_size`` (W, H)."""

    crop: Tuple[float, float, float, float]
    input_size: Tuple[int, int]

    def __post_init__(self) -> None:
        x, y, w, h = (float(v) for v in self.crop)
        W, H = (float(v) for v in self.input_size)
        if not all(math.isfinite(v) for v in (x, y, w, h, W, H)) or w <= 0 or h <= 0 or W <= 0 or H <= 0:
            raise RequestError("a model view needs a non-empty crop and input size, "
                               f"got {self.crop} / {self.input_size}")

    @classmethod
    def whole(cls, width: float, height: float, input_size: Tuple[int, int]) -> "ModelView":
        return cls((0.0, 0.0, float(width), float(height)), input_size)


def _ordered(a: float, b: float, c: float, d: float) -> Box:
    return (min(a, c), min(b, d), max(a, c), max(b, d))


def _four(box: Sequence[float]) -> Box:
    vals = tuple(float(v) for v in box)
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise RequestError(f"a box is four finite numbers, got {box!r}")
    return vals


def to_scene(box: Sequence[float], convention: str, view: ModelView) -> Box:
    """A box as the model wrote it (in ``convention``) -> scene pixels (x0, y0, x1, y1)."""
    conv = canonical_convention(convention)
    a, b, c, d = _four(box)
    cx, cy, cw, ch = (float(v) for v in view.crop)
    if conv == "sarlang":
        return _ordered(cx + a, cy + b, cx + a + c, cy + b + d)
    if conv == "qwen2.5-vl":
        sx, sy = cw / float(view.input_size[0]), ch / float(view.input_size[1])
    else:
        sx, sy = cw / _SCALE[conv], ch / _SCALE[conv]
    return _ordered(cx + a * sx, cy + b * sy, cx + c * sx, cy + d * sy)


def from_scene(box: Sequence[float], convention: str, view: ModelView) -> Box:
    """Scene pixels (x0, y0, x1, y1) -> the numbers of ``convention`` (sarlang: x, y, w, h)."""
    conv = canonical_convention(convention)
    x0, y0, x1, y1 = _ordered(*_four(box))
    cx, cy, cw, ch = (float(v) for v in view.crop)
    if conv == "sarlang":
        return (x0 - cx, y0 - cy, x1 - x0, y1 - y0)
    if conv == "qwen2.5-vl":
        sx, sy = float(view.input_size[0]) / cw, float(view.input_size[1]) / ch
    else:
        sx, sy = _SCALE[conv] / cw, _SCALE[conv] / ch
    return ((x0 - cx) * sx, (y0 - cy) * sy, (x1 - cx) * sx, (y1 - cy) * sy)


# ---- parsing answers --------------------------------------------------------------------------

@dataclass(frozen=True)
class ParsedBox:
    """Four numbers as the model wrote them (sarlang hint: x, y, w, h; others: x1, y1, x2, y2).

    ``convention_hint`` comes from the syntax only (Qwen3-VL also writes ``bbox_2d`` JSON but in
    0-1000): the caller's model family decides, see ``convention_for_model``."""

    coords: Box
    convention_hint: str
    label: Optional[str] = None
    angle: Optional[float] = None
    span: Tuple[int, int] = (0, 0)   # where in the answer text it was found


@dataclass
class ParsedAnswer:
    boxes: List[ParsedBox] = field(default_factory=list)
    positions: List[str] = field(default_factory=list)   # canonical: "top left", "center", ...


_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
# no closing brace required: objects may nest ({"attrs": {...}}) or be cut off by max_tokens
_JSON_OBJ = re.compile(r"\{[^{}]*?[\"']bbox_2d[\"']\s*:\s*\[([^\[\]{}]*)\][^{}]*")
_JSON_LABEL = re.compile(r"[\"']label[\"']\s*:\s*\"((?:[^\"\\]|\\.){0,200})\"")
# bounded lengths keep the scans linear on junk with many unclosed tags
_REF = re.compile(r"(?:<ref>|<\|object_ref_start\|>)(.{0,200}?)(?:</ref>|<\|object_ref_end\|>)", re.S)
_BOX = re.compile(r"(?:<box>|<\|box_start\|>)(.{0,600}?)(?:</box>|<\|box_end\|>)", re.S)
_PAIRS = re.compile(rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*,?\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_GEOCHAT = re.compile(rf"(?:<p>(.{{0,200}}?)</p>\s*)?\{{\s*<({_NUM})>\s*<({_NUM})>\s*<({_NUM})>\s*<({_NUM})>\s*"
                      rf"(?:\|\s*<?\s*({_NUM})\s*>?\s*)?\}}", re.S)
_BARE_LIST = re.compile(rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]")
_WORD_BEFORE = re.compile(r"[A-Za-z][\w-]*$")   # the label glued to '(x1,y1),(x2,y2)'
_POS_WORD = r"top|upper|bottom|lower|center|centre|middle|left|right"
_POSITION = re.compile(rf"\b({_POS_WORD})(?:-hand)?\b(?:[\s-]+({_POS_WORD})(?:-hand)?\b)?", re.I)
_CANON = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom",
          "center": "center", "centre": "center", "middle": "center", "left": "left", "right": "right"}
_VERTICAL, _HORIZONTAL = ("top", "bottom"), ("left", "right")


def _nums(text: str) -> List[float]:
    out = []
    for s in re.findall(_NUM, text):
        try:
            v = float(s)
        except ValueError:
            continue
        if math.isfinite(v):
            out.append(v)
    return out


def _mask(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _unescape(s: str) -> str:
    try:
        return json.loads(f'"{s}"')
    except ValueError:
        return s


def _box_contents(inner: str) -> List[Box]:
    """Boxes inside one <box>...</box>: '(x1,y1),(x2,y2)', '[[x1,y1,x2,y2], ...]' or four numbers."""
    found = [tuple(float(v) for v in m.groups()) for m in _PAIRS.finditer(inner)]
    if not found:
        for m in _BRACKET.finditer(inner.replace("[[", "[").replace("]]", "]")):
            vals = _nums(m.group(1))
            if len(vals) == 4:
                found.append(tuple(vals))
    if not found:
        vals = _nums(inner)
        found = [tuple(vals[i:i + 4]) for i in range(0, len(vals) - 3, 4)]
    return [b for b in found if all(math.isfinite(v) for v in b)]  # type: ignore[misc]


def _parse_tags(text: str, boxes: List[ParsedBox]) -> str:
    """<ref>label</ref><box>...</box> (Qwen-VL / Qwen2-VL / InternVL); one ref labels the boxes after it."""
    tokens = sorted([(m.start(), m.end(), "ref", m) for m in _REF.finditer(text)]
                    + [(m.start(), m.end(), "box", m) for m in _BOX.finditer(text)], key=lambda t: t[0])
    label: Optional[str] = None
    last_end = 0
    for start, end, kind, m in tokens:
        if start < last_end:          # overlapping matches (a tag inside a tag): keep the first
            continue
        if kind == "ref":
            label = m.group(1).strip() or None
        else:
            if text[last_end:start].strip(" \t\r\n,;:.") not in ("", "and"):
                label = None          # free text between the ref and this box: not its label
            for b in _box_contents(m.group(1)):
                boxes.append(ParsedBox(b, "qwen2-vl", label, None, (start, end)))
        last_end = end
    for start, end, _, _ in tokens:
        text = _mask(text, start, end)
    return text


def canonical_position(word: str) -> Optional[str]:
    """'Upper-left' -> 'top left', 'centre' -> 'center', 'middle right' -> 'center right'; None if not one."""
    m = _POSITION.fullmatch(str(word).strip())
    if not m:
        return None
    a = _CANON[m.group(1).lower()]
    b = _CANON[m.group(2).lower()] if m.group(2) else None
    return _combine(a, b)


def _combine(a: str, b: Optional[str]) -> Optional[str]:
    if b is None or a == b:
        return a
    v = next((w for w in (a, b) if w in _VERTICAL), None)
    h = next((w for w in (a, b) if w in _HORIZONTAL), None)
    if v and h:
        return f"{v} {h}"
    if "center" in (a, b) and (v or h):
        return f"{v} center" if v else f"center {h}"
    return None   # 'left right', 'top bottom': two words, not one place


def _positions(text: str) -> List[str]:
    out: List[str] = []
    for m in _POSITION.finditer(text):
        a = _CANON[m.group(1).lower()]
        b = _CANON[m.group(2).lower()] if m.group(2) else None
        combo = _combine(a, b)
        for p in ([combo] if combo else [a, b]):
            if p and p not in out:
                out.append(p)
    return out


def parse_answer(text: Any) -> ParsedAnswer:
    """Boxes and position words in a model's answer. Never raises; unknown text gives an empty answer."""
    try:
        return _parse(str(text) if text is not None else "")
    except Exception:  # a parser bug must not take a chat down; the raw text is still shown
        log.warning("could not parse boxes in an answer", exc_info=True)
        return ParsedAnswer()


def _parse(text: str) -> ParsedAnswer:
    boxes: List[ParsedBox] = []
    # Qwen2.5-VL JSON objects, fenced or not, single or in a list; truncated trailing objects skipped
    for m in _JSON_OBJ.finditer(text):
        vals = _nums(m.group(1))
        if len(vals) != 4:
            continue
        lm = _JSON_LABEL.search(m.group(0))
        label = _unescape(lm.group(1)) if lm else None
        boxes.append(ParsedBox(tuple(vals), "qwen2.5-vl", label, None, m.span()))  # type: ignore[arg-type]
        text = _mask(text, *m.span())
    text = _parse_tags(text, boxes)
    for m in _GEOCHAT.finditer(text):
        vals = _nums(" ".join(m.group(i) for i in range(2, 6)))
        angle = _nums(m.group(6))[0] if m.group(6) else None
        label = m.group(1).strip() if m.group(1) and m.group(1).strip() else None
        if len(vals) == 4:
            boxes.append(ParsedBox(tuple(vals), "geochat", label, angle, m.span()))  # type: ignore[arg-type]
        text = _mask(text, *m.span())
    # Qwen2-VL with its special tokens stripped: 'ship(120,40),(300,220)'
    for m in _PAIRS.finditer(text):
        word = _WORD_BEFORE.search(text, max(0, m.start() - 40), m.start())
        boxes.append(ParsedBox(tuple(float(v) for v in m.groups()), "qwen2-vl",  # type: ignore[arg-type]
                               word.group(0) if word else None, None, m.span()))
        text = _mask(text, *m.span())
    for m in _BARE_LIST.finditer(text):
        vals = _nums(" ".join(m.groups()))
        if len(vals) == 4:
            boxes.append(ParsedBox(tuple(vals), "sarlang", None, None, m.span()))  # type: ignore[arg-type]
        text = _mask(text, *m.span())
    boxes.sort(key=lambda b: b.span[0])
    return ParsedAnswer(boxes, _positions(text))


def position_region(word: str, width: float, height: float) -> Box:
    """The part of a width x height crop a position word names, in crop pixels (x0, y0, x1, y1).

    Rule: thirds. 'top' is the top third over the full width, 'left' the left third over the full
    height, 'center' the middle third both ways, 'top left' the top-left ninth, 'top center' the
    top third of the middle column. Add the crop's offset for scene pixels.
    """
    canon = canonical_position(word)
    if canon is None:
        raise RequestError(f"{word!r} is not a position (top, bottom, left, right, center, 'top left', ...)")
    parts = canon.split()
    v: Optional[str]
    h: Optional[str]
    if canon == "center":
        v = h = "center"
    else:  # 'top center' / 'center left': the word 'center' names the other axis
        v = next((p for p in parts if p in _VERTICAL), "center" if parts[0] == "center" else None)
        h = next((p for p in parts if p in _HORIZONTAL), "center" if parts[-1] == "center" else None)
    w, ht = float(width), float(height)
    thirds = {"top": (0.0, 1 / 3), "left": (0.0, 1 / 3), "center": (1 / 3, 2 / 3),
              "bottom": (2 / 3, 1.0), "right": (2 / 3, 1.0), None: (0.0, 1.0)}
    (fx0, fx1), (fy0, fy1) = thirds[h], thirds[v]
    return (fx0 * w, fy0 * ht, fx1 * w, fy1 * ht)


# ---- GeoJSON ----------------------------------------------------------------------------------

def _ring(box: Box, fn) -> Optional[List[List[float]]]:
    x0, y0, x1, y1 = _ordered(*_four(box))
    pts = []
    for col, row in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
        p = fn(col, row)
        if p is None or not all(math.isfinite(float(v)) for v in p):
            return None
        pts.append([float(p[0]), float(p[1])])
    area = sum(pts[i][0] * pts[(i + 1) % 4][1] - pts[(i + 1) % 4][0] * pts[i][1] for i in range(4))
    if area < 0:                      # RFC 7946: exterior rings counter-clockwise (x east, y north)
        pts.reverse()
    return pts + [pts[0]]


def box_to_geojson_feature(box_scene: Sequence[float], label: Optional[str], scene: Any, *,
                           convention: Optional[str] = None, lonlat: bool = False,
                           properties: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """A GeoJSON Feature: the box as a Polygon in the scene's map coordinates (``lonlat=True``: WGS 84
    lon/lat via ``scene.pixel_to_lonlat``). Properties: label, convention, pixel_box (scene pixels)."""
    box = _ordered(*_four(box_scene))
    fn = scene.pixel_to_lonlat if lonlat else scene.pixel_to_map
    ring = _ring(box, fn)
    if ring is None:
        raise RequestError("this box has no " + ("lon/lat" if lonlat else "map") + " coordinates in this scene")
    props: Dict[str, Any] = {"label": label, "convention": convention, "pixel_box": list(box)}
    props.update(properties or {})
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": props}


def _crs_member(scene: Any) -> Optional[Dict[str, Any]]:
    crs = getattr(scene, "crs", None)
    epsg = None
    try:
        epsg = crs.to_epsg() if crs is not None else None
    except Exception as exc:
        log.debug("no EPSG code for the scene's CRS (%s); naming it by WKT", exc)
        epsg = None
    name = f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else getattr(scene, "crs_wkt", None)
    return {"type": "name", "properties": {"name": name or "pixel"}}


def boxes_to_feature_collection(items: Iterable[Sequence[Any]], scene: Any) -> Dict[str, Any]:
    """FeatureCollection of ``(box_scene, label[, convention])`` items.

    RFC 7946 lon/lat when every corner converts (the scene has a CRS PROJ can take to WGS 84);
    otherwise map coordinates with a legacy ``crs`` member naming the CRS (``"pixel"`` when the
    scene is not georeferenced at all, coordinates then being image columns/rows).
    """
    rows = [(tuple(it[0]), it[1] if len(it) > 1 else None, it[2] if len(it) > 2 else None) for it in items]
    to_ll = getattr(scene, "pixel_to_lonlat", None)
    lonlat = to_ll is not None and to_ll(0.0, 0.0) is not None
    if lonlat:
        lonlat = all(_ring(_ordered(*_four(b)), to_ll) is not None for b, _, _ in rows)
    feats = [box_to_geojson_feature(b, lab, scene, convention=conv, lonlat=lonlat) for b, lab, conv in rows]
    fc: Dict[str, Any] = {"type": "FeatureCollection", "features": feats}
    if not lonlat:
        fc["crs"] = _crs_member(scene)
    return fc
