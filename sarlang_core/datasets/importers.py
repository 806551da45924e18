"""Importers: SARDet-100K COCO, SARLANG-1M JSON / CSV as released, and SAR/optical folder pairs.

Every importer returns an :class:`ImportResult`. Bad records never raise: they are left out (or
repaired, e.g. a box clipped to its image) and reported as a :class:`Problem` naming the file and
where in it (a CSV line number, or "image id 3", "annotation id 7", "record 4", a file name).
Only a file that cannot be used at all (missing, not JSON, not a SARLANG CSV, not a folder)
raises :class:`DatasetError`.

Image sizes: COCO takes width/height from the JSON (image files are only checked to exist);
pairs, and the SARLANG JSON/CSV importers when ``images_dir`` is given, read them from the image
header with PIL (``Image.open`` reads no pixels). Without ``images_dir`` the JSON/CSV importers
cannot know sizes and give 0 x 0 ("unknown").
"""

from __future__ import annotations

import csv
import json
import os
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from ..errors import SarlangError
from .json_records import TooDeep, loads_records
from .question_forms import question_type
from .record_checks import MAX_SIDE, clip_box, fmt_box, is_key, is_num, safe_name
from .records import BoxRecord, ImageRecord, Item

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
# The question stored with a caption imported from a CSV (the CSV has captions only).
CAPTION_PROMPTS = {"caption_concise": "Describe this SAR image briefly.",
                   "caption_detailed": "Describe this SAR image in detail."}


class DatasetError(SarlangError):
    """An annotation file or folder cannot be used at all (missing, not JSON, not a SARLANG CSV)."""


@dataclass(frozen=True)
class Problem:
    file: str
    where: Union[int, str]      # CSV line number (1-based), or "image id 3", "record 4", a file name
    message: str


@dataclass
class ImportResult:
    images: List[ImageRecord] = field(default_factory=list)
    boxes: List[BoxRecord] = field(default_factory=list)
    items: List[Item] = field(default_factory=list)
    problems: List[Problem] = field(default_factory=list)


def guess_type(question: str) -> str:
    """Item type of a released SARLANG-1M question (the classes prefix, if any, is ignored)."""
    return question_type(question) or "general"


def _load_json(path) -> object:
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{p}: file not found")
    try:
        with open(p, "r", encoding="utf-8-sig") as f:
            return loads_records(f.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{p}: not a JSON file ({exc})") from None
    except RecursionError:
        raise DatasetError(f"{p}: JSON nested too deeply to read (a broken or hostile file); "
                           "nothing was imported from it") from None
    except OSError as exc:
        raise DatasetError(f"{p}: cannot be read ({exc.strerror or exc})") from None


def _header_size(path: Path) -> Tuple[int, int]:
    from PIL import Image  # header only: no pixels are decoded

    with Image.open(path) as im:
        return int(im.width), int(im.height)


# -------------------------------------------------------------------------------------------- COCO

def import_coco(annotations_json, images_dir=None) -> ImportResult:
    """SARDet-100K COCO annotations -> images (id = file_name) and boxes (clipped to the image).

    Left out and reported: malformed records, non-positive image or box sizes, duplicate image
    ids / file names / annotation ids (the first one wins), unknown category or image ids, boxes
    fully outside their image; images whose file is missing under ``images_dir`` (their boxes too).
    Boxes partly outside are clipped and reported."""
    data = _load_json(annotations_json)
    src = str(annotations_json)
    if not isinstance(data, dict):
        raise DatasetError(f"{src}: not COCO annotations (top level is not an object)")
    res = ImportResult()
    bad = res.problems.append

    cats: Dict[object, str] = {}
    for i, c in enumerate(_list(data, "categories", src, bad)):
        if not isinstance(c, dict) or not is_key(c.get("id")) or not isinstance(c.get("name"), str) \
                or not c["name"]:
            bad(Problem(src, f"categories[{i}]", _malformed(c, "malformed category (needs an id, a number or text, "
                                                              "and a name)")))
        elif c["id"] in cats:
            bad(Problem(src, f"category id {c['id']}", "duplicate category id"))
        else:
            cats[c["id"]] = c["name"]

    sizes: Dict[object, Tuple[str, int, int]] = {}     # coco image id -> (file_name, w, h)
    names = set()
    missing = set()
    for i, im in enumerate(_list(data, "images", src, bad)):
        if not isinstance(im, dict) or not is_key(im.get("id")) or not isinstance(im.get("file_name"), str) \
                or not im["file_name"]:
            bad(Problem(src, f"images[{i}]", _malformed(im, "malformed image record (needs an id, a number or "
                                                            "text, and a file_name)")))
            continue
        where = f"image id {im['id']}"
        w, h, name = im.get("width"), im.get("height"), im["file_name"]
        if not (is_num(w) and is_num(h) and float(w).is_integer() and float(h).is_integer()):
            bad(Problem(src, where, f"{name}: width/height missing or not whole numbers"))
            continue
        if w <= 0 or h <= 0:
            bad(Problem(src, where, f"{name}: non-positive image size {w} x {h}"))
            continue
        if w > MAX_SIDE or h > MAX_SIDE:
            bad(Problem(src, where, f"{name}: image size {w:g} x {h:g} too large (at most {MAX_SIDE} a side)"))
            continue
        why = safe_name(name, images_dir)
        if why:
            bad(Problem(src, where, f"{name}: {why}"))
            missing.add(im["id"])
            continue
        if im["id"] in sizes:
            bad(Problem(src, where, f"{name}: duplicate image id (first one kept)"))
            continue
        if name in names:
            bad(Problem(src, where, f"{name}: duplicate file_name (first one kept)"))
            continue
        path = os.path.join(str(images_dir), name) if images_dir is not None else name
        if images_dir is not None and not os.path.exists(path):
            bad(Problem(src, where, f"{name}: image file missing under {images_dir}; its boxes are skipped"))
            missing.add(im["id"])
            continue
        names.add(name)
        sizes[im["id"]] = (name, int(w), int(h))
        res.images.append(ImageRecord(name, path, int(w), int(h), source=src))

    seen_ann = set()
    for i, a in enumerate(_list(data, "annotations", src, bad)):
        if not isinstance(a, dict) or not is_key(a.get("id")):
            bad(Problem(src, f"annotations[{i}]", _malformed(a, "malformed annotation record (needs an id, a "
                                                                "number or text)")))
            continue
        if not is_key(a.get("image_id")) or not is_key(a.get("category_id")):
            bad(Problem(src, f"annotation id {a['id']}", "image_id and category_id must be numbers or text"))
            continue
        where = f"annotation id {a['id']}"
        if a["id"] in seen_ann:
            bad(Problem(src, where, "duplicate annotation id (first one kept)"))
            continue
        seen_ann.add(a["id"])
        img = a.get("image_id")
        if img in missing:
            continue
        if img not in sizes:
            bad(Problem(src, where, f"unknown image id {img!r}"))
            continue
        if a.get("category_id") not in cats:
            bad(Problem(src, where, f"unknown category id {a.get('category_id')!r}"))
            continue
        bb = a.get("bbox")
        if not isinstance(bb, (list, tuple)) or len(bb) != 4 or not all(is_num(v) for v in bb):
            bad(Problem(src, where, f"malformed bbox {reprlib.repr(bb)} (needs 4 numbers [x, y, w, h])"))
            continue
        x, y, bw, bh = (float(v) for v in bb)
        if bw <= 0 or bh <= 0:
            bad(Problem(src, where, f"non-positive box size {bw:g} x {bh:g}"))
            continue
        name, iw, ih = sizes[img]
        box = clip_box((x, y, bw, bh), iw, ih)
        if box is None:
            bad(Problem(src, where, f"box {fmt_box(bb)} is fully outside {name} ({iw} x {ih}); dropped"))
            continue
        if box != (x, y, bw, bh):
            bad(Problem(src, where, f"box {fmt_box(bb)} partly outside {name} ({iw} x {ih}); "
                                    f"clipped to {fmt_box(box)}"))
        res.boxes.append(BoxRecord(name, cats[a["category_id"]], box, str(a["id"])))
    return res


def _malformed(record, message: str) -> str:
    return "record nested too deeply to read; left out" if isinstance(record, TooDeep) else message


def _list(data: dict, key: str, src: str, bad) -> list:
    v = data.get(key, [])
    if not isinstance(v, list):
        bad(Problem(src, key, f"'{key}' is not a list; ignored"))
        return []
    return v


# --------------------------------------------------------------------------------- SARLANG JSON/CSV

class _Images:
    """ImageRecords for image names met in a JSON/CSV file, each checked/read once."""

    def __init__(self, images_dir, src: str, res: ImportResult):
        self.dir, self.src, self.res = images_dir, src, res
        self.known: Dict[str, bool] = {}

    def ok(self, name: str, where) -> bool:
        if name in self.known:
            return self.known[name]
        w = h = 0
        path = name
        good = True
        why = safe_name(name, self.dir)
        if why:
            self.res.problems.append(Problem(self.src, where, f"{name}: {why}"))
            self.known[name] = False
            return False
        if self.dir is not None:
            path = os.path.join(str(self.dir), name)
            try:
                w, h = _header_size(Path(path))
            except FileNotFoundError:
                self.res.problems.append(Problem(self.src, where, f"{name}: image file missing under {self.dir}"))
                good = False
            except Exception as exc:  # PIL raises many kinds for a file it cannot read
                self.res.problems.append(Problem(self.src, where, f"{name}: not a readable image ({exc})"))
                good = False
        if good:
            self.res.images.append(ImageRecord(name, path, w, h, source=self.src))
        self.known[name] = good
        return good


def import_sarlang_json(path, images_dir=None) -> ImportResult:
    """Released SARLANG-1M JSON (LLaMA-Factory sharegpt: messages + images) -> items ("imported").

    Each user -> assistant turn is one item; "<image>" is removed from the question and the type
    is guessed from the question (:func:`guess_type`)."""
    data = _load_json(path)
    src = str(path)
    if not isinstance(data, list):
        raise DatasetError(f"{src}: not a SARLANG JSON file (top level is not a list)")
    res = ImportResult()
    images = _Images(images_dir, src, res)
    for i, rec in enumerate(data):
        where = f"record {i}"
        msgs = rec.get("messages") if isinstance(rec, dict) else None
        imgs = rec.get("images") if isinstance(rec, dict) else None
        if not isinstance(msgs, list) or not isinstance(imgs, list):
            res.problems.append(Problem(src, where, _malformed(rec, "malformed record (needs 'messages' and "
                                                                    "'images' lists)")))
            continue
        if len(imgs) != 1 or not isinstance(imgs[0], str) or not imgs[0].strip():
            res.problems.append(Problem(src, where, f"needs exactly one image path, got {reprlib.repr(imgs)}"))
            continue
        pairs, err = _turns(msgs)
        if err:
            res.problems.append(Problem(src, where, err))
            continue
        name = imgs[0].strip()
        if not images.ok(name, where):
            continue
        for q, a in pairs:
            question = q.replace("<image>", "").strip()
            res.items.append(Item(name, guess_type(question), question, a.strip(), "imported",
                                  {"file": src, "record": i}))
    return res


def _turns(msgs: list):
    pairs = []
    if not msgs or len(msgs) % 2:
        return None, "messages must be user/assistant pairs"
    for k in range(0, len(msgs), 2):
        u, a = msgs[k], msgs[k + 1]
        if not (isinstance(u, dict) and isinstance(a, dict) and u.get("role") == "user"
                and a.get("role") == "assistant"):
            return None, f"messages[{k}:{k + 2}] are not a user then an assistant message"
        q, ans = u.get("content"), a.get("content")
        if not isinstance(q, str) or not isinstance(ans, str) or not q.replace("<image>", "").strip() \
                or not ans.strip():
            return None, f"messages[{k}:{k + 2}]: empty or non-text content"
        pairs.append((q, ans))
    return pairs, None


def import_sarlang_csv(path, images_dir=None, caption_type: Optional[str] = None) -> ImportResult:
    """Released SARLANG-1M CSV: ``Image Name, Caption`` or ``Image Name, Question, Answer``.

    The header decides the kind (case and surrounding spaces ignored; a UTF-8 BOM is fine; quoted
    fields may hold commas and newlines). Bad rows are reported with the line they start on.
    Captions become ``caption_detailed`` items when the file name says "detail" (else concise)
    unless ``caption_type`` is given; their question is :data:`CAPTION_PROMPTS`' one."""
    p = Path(path)
    src = str(path)
    if not p.is_file():
        raise DatasetError(f"{src}: file not found")
    res = ImportResult()
    images = _Images(images_dir, src, res)
    try:
        with open(p, "r", encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            cols = [h.strip().lower() for h in header] if header else []
            if cols == ["image name", "caption"]:
                kind = "caption"
            elif cols == ["image name", "question", "answer"]:
                kind = "qa"
            else:
                raise DatasetError(f"{src}: not a SARLANG CSV (header {header!r}; expected "
                                   "'Image Name, Caption' or 'Image Name, Question, Answer')")
            assert header is not None   # the columns matched, so there was a header row
            ctype = caption_type or ("caption_detailed" if "detail" in p.stem.lower() else "caption_concise")
            line = reader.line_num + 1
            for row in reader:
                start, line = line, reader.line_num + 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != len(cols):
                    res.problems.append(Problem(src, start, f"expected {len(cols)} columns, got {len(row)}"))
                    continue
                fields = [v.strip() for v in row]
                if not all(fields):
                    empty = [header[k].strip() for k, v in enumerate(fields) if not v]
                    res.problems.append(Problem(src, start, f"empty {', '.join(empty)}"))
                    continue
                if not images.ok(fields[0], start):
                    continue
                if kind == "caption":
                    res.items.append(Item(fields[0], ctype, CAPTION_PROMPTS[ctype], fields[1], "imported",
                                          {"file": src, "line": start}))
                else:
                    res.items.append(Item(fields[0], guess_type(fields[1]), fields[1], fields[2], "imported",
                                          {"file": src, "line": start}))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{src}: not a UTF-8 CSV file ({exc})") from None
    except csv.Error as exc:
        raise DatasetError(f"{src}: not a CSV file ({exc})") from None
    return res


# ------------------------------------------------------------------------------------------- pairs

def _images_by_stem(folder: Path, res: ImportResult) -> Dict[str, Path]:
    out: Dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        why = safe_name(f.name, folder)
        if why:
            res.problems.append(Problem(str(f), f.name, why))
            continue
        if f.stem in out:
            res.problems.append(Problem(str(f), f.name, f"same stem as {out[f.stem].name}; ignored"))
            continue
        out[f.stem] = f
    return out


def import_pairs(sar_dir, optical_dir) -> ImportResult:
    """SAR / optical images in two folders, matched by file stem (``a.tif`` <-> ``a.png``).

    ImageRecord.id is the SAR file name, sizes come from the SAR image header; unmatched files
    on either side, unreadable images and SAR/optical size mismatches (kept) are reported."""
    sar, opt = Path(sar_dir), Path(optical_dir)
    for d, what in ((sar, "SAR"), (opt, "optical")):
        if not d.is_dir():
            raise DatasetError(f"{d}: {what} folder not found")
    res = ImportResult()
    sars, opts = _images_by_stem(sar, res), _images_by_stem(opt, res)
    for stem in sorted(set(opts) - set(sars)):
        res.problems.append(Problem(str(opts[stem]), opts[stem].name, "optical image has no SAR image"))
    for stem, sp in sars.items():
        op = opts.get(stem)
        if op is None:
            res.problems.append(Problem(str(sp), sp.name, "SAR image has no optical image"))
            continue
        try:
            w, h = _header_size(sp)
        except Exception as exc:
            res.problems.append(Problem(str(sp), sp.name, f"not a readable image ({exc})"))
            continue
        try:
            ow, oh = _header_size(op)
            if (ow, oh) != (w, h):
                res.problems.append(Problem(str(op), op.name, f"optical size {ow} x {oh} differs from "
                                                              f"SAR size {w} x {h} (pair kept)"))
        except Exception as exc:
            res.problems.append(Problem(str(op), op.name, f"not a readable image ({exc})"))
            continue
        res.images.append(ImageRecord(sp.name, str(sp), w, h, optical_path=str(op), source=str(sar)))
    return res
