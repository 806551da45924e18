"""Export dataset items for training: LLaMA-Factory sharegpt, LLaVA, JSONL, or SARLANG-1M CSV.

    summary = export_dataset(store.items(), images, "out/", format="sharegpt",
                             image_writer=write_preprocessed, pipeline_json=pipeline.to_dict())

Layout of ``out_dir`` (one file per split when the images carry one, else one file):

    images/<image id>          the images (``image_writer`` output as .png, else a copy)
    sharegpt  sarlang_train.json, sarlang_test.json + dataset_info.json
    llava     llava_train.json, ...
    jsonl     items_train.jsonl, ...
    csv       captions_train.csv (Image Name, Caption), vqa_train.csv (Image Name, Question, Answer)
    pipeline.json              when ``pipeline_json`` is given

Every file is written to a temporary name and renamed into place: none is ever half-written.
Items are checked before anything is written (unknown image -> ExportError, nothing written).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from ..atomic import create_temp, write_bytes_atomic
from ..errors import ExportError
from ..progress import CancelToken, ProgressCallback, check, report
from .qc import CAPTION_TYPES
from .records import ImageRecord, Item

log = logging.getLogger(__name__)

FORMATS = ("sharegpt", "llava", "jsonl", "csv")
DEFAULT_STATUSES = ("accepted", "edited")
IMAGE_TAG = "<image>"
ImageWriter = Callable[[ImageRecord, Path], None]


@dataclass
class ExportSummary:
    out_dir: str
    format: str
    files: List[str] = field(default_factory=list)          # written, relative to out_dir
    items_by_split: Dict[str, int] = field(default_factory=dict)
    images_written: int = 0
    skipped_status: int = 0                                   # items left out for their status

    @property
    def items_written(self) -> int:
        return sum(self.items_by_split.values())


# ----------------------------------------------------------------------------- atomic writes
def _unlink(path: Any) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:       # a temp file left behind is harmless, but say so
        log.warning("could not remove %s: %s", path, exc)


def _atomic_image(record: ImageRecord, dest: Path, writer: ImageWriter) -> None:
    """``writer`` writes to a temporary name with the real suffix (so PIL & co. pick the format);
    it is renamed to ``dest`` only when the writer returned."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = create_temp(dest, suffix=dest.suffix)   # plain-open() permissions, not mkstemp's 0600
    try:
        writer(record, tmp)
        if not os.path.exists(tmp) or os.path.getsize(tmp) == 0:
            raise ExportError(f"{record.id}: the image writer wrote nothing")
        os.replace(tmp, dest)
    except ExportError:
        _unlink(tmp)
        raise
    except Exception as exc:
        _unlink(tmp)
        raise ExportError(f"{record.id}: the image could not be written to {dest} ({exc})") from exc


def _copy_source(image_root: Optional[Path]) -> ImageWriter:
    def copy(record: ImageRecord, dest: Path) -> None:
        src = Path(record.path)
        if not src.is_absolute() and image_root is not None:
            src = image_root / src
        if not src.is_file():
            raise ExportError(f"{record.id}: source image {src} does not exist")
        shutil.copyfile(src, dest)
    return copy


# ----------------------------------------------------------------------------- paths
def _safe_rel(image_id: str) -> PurePosixPath:
    """``images/<image id>`` stays inside the export: ids that climb out are refused, not rewritten."""
    norm = image_id.replace("\\", "/")
    if norm.startswith("/") or ".." in norm.split("/") or (len(norm) > 1 and norm[1] == ":"):
        raise ExportError(f"image id '{image_id}' leads out of the images folder (an absolute path or '..'); "
                          f"nothing was written. Re-import its annotation file: such records are now refused")
    parts = [p for p in PurePosixPath(norm).parts if p not in ("", ".")]
    if not parts:
        raise ExportError(f"image id '{image_id}' gives no usable file name")
    return PurePosixPath(*parts)


def _image_rel(record: ImageRecord, png: bool) -> str:
    rel = _safe_rel(record.id)
    suffix = ".png" if png else (Path(record.path).suffix or rel.suffix or ".png")
    return str(PurePosixPath("images") / rel.with_suffix(suffix))


# ----------------------------------------------------------------------------- formats
def _question(item: Item) -> str:
    q = item.question or ""
    return q[len(IMAGE_TAG):].lstrip("\n") if q.startswith(IMAGE_TAG) else q


def _sharegpt(rows: List[Tuple[Item, str]]) -> bytes:
    out = [{"messages": [{"role": "user", "content": IMAGE_TAG + _question(it)},
                         {"role": "assistant", "content": it.answer}],
            "images": [img]} for it, img in rows]
    return json.dumps(out, ensure_ascii=False, indent=1).encode("utf-8")


def _llava(rows: List[Tuple[Item, str]]) -> bytes:
    out = []
    for k, (it, img) in enumerate(rows):
        out.append({"id": str(it.id) if it.id is not None else f"{k:07d}", "image": img,
                    "conversations": [{"from": "human", "value": IMAGE_TAG + "\n" + _question(it)},
                                      {"from": "gpt", "value": it.answer}]})
    return json.dumps(out, ensure_ascii=False, indent=1).encode("utf-8")


def _jsonl(rows: List[Tuple[Item, str]], split: str) -> bytes:
    lines = []
    for it, img in rows:
        rec = dataclasses.asdict(it)
        rec["image"] = img
        rec["split"] = split or None
        lines.append(json.dumps(rec, ensure_ascii=False, default=str))
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")


def _csv(header: List[str], rows: List[List[str]]) -> bytes:
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _dataset_info(names: Dict[str, str]) -> bytes:
    info = {name: {"file_name": file_name, "formatting": "sharegpt",
                   "columns": {"messages": "messages", "images": "images"},
                   "tags": {"role_tag": "role", "content_tag": "content",
                            "user_tag": "user", "assistant_tag": "assistant"}}
            for name, file_name in names.items()}
    return json.dumps(info, indent=2).encode("utf-8")


def _pipeline_bytes(pipeline_json: Any) -> bytes:
    if isinstance(pipeline_json, (bytes, bytearray)):
        pipeline_json = pipeline_json.decode("utf-8")
    if isinstance(pipeline_json, str):
        try:
            json.loads(pipeline_json)
        except ValueError as exc:
            raise ExportError(f"pipeline_json is not valid JSON: {exc}") from exc
        return pipeline_json.encode("utf-8")
    if hasattr(pipeline_json, "to_dict"):
        pipeline_json = pipeline_json.to_dict()
    try:
        return json.dumps(pipeline_json, indent=2).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ExportError(f"pipeline_json cannot be written as JSON: {exc}") from exc


# ----------------------------------------------------------------------------- entry point
def export_dataset(items: Iterable[Item], images: Mapping[str, ImageRecord], out_dir: Any, *,
                   format: str = "sharegpt", image_writer: Optional[ImageWriter] = None,
                   pipeline_json: Any = None, statuses: Optional[Iterable[str]] = DEFAULT_STATUSES,
                   image_root: Any = None, dataset_name: str = "sarlang",
                   progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None) -> ExportSummary:
    """Write ``items`` (those whose status is in ``statuses``; None: every status) and their
    images to ``out_dir`` in ``format``. ``image_writer(record, dest)`` writes one preprocessed
    image (dest ends in .png); default: copy the source file (relative paths under ``image_root``).
    The images go first, each atomically; the text files only once every image is written, so a
    cancelled or failed export never leaves a dataset file that names missing images."""
    if format not in FORMATS:
        raise ExportError(f"unknown export format '{format}': use one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    wanted = None if statuses is None else set(statuses)
    summary = ExportSummary(out_dir=str(out), format=format)

    selected: List[Item] = []
    for it in items:
        if wanted is not None and it.status not in wanted:
            summary.skipped_status += 1
            continue
        if it.image_id not in images:
            who = f"item #{it.id}" if it.id is not None else "an item"
            raise ExportError(f"{who} refers to image '{it.image_id}', which is not in the "
                              f"project; nothing was written")
        selected.append(it)

    if not selected:
        which = "any status" if wanted is None else "status " + " or ".join(sorted(wanted))
        raise ExportError(f"no item of {which} to export ({summary.skipped_status:,} left out for their "
                          f"status); nothing was written")
    splits_known = any(images[it.image_id].split for it in selected)
    png = image_writer is not None
    writer = image_writer or _copy_source(Path(image_root) if image_root is not None else None)
    rel_of = {iid: _image_rel(images[iid], png) for iid in {it.image_id for it in selected}}
    if len(set(rel_of.values())) != len(rel_of):
        raise ExportError("two images map to the same exported file name; nothing was written")

    groups: Dict[str, List[Tuple[Item, str]]] = {}
    for it in selected:
        split = (images[it.image_id].split or "unassigned") if splits_known else ""
        groups.setdefault(split, []).append((it, rel_of[it.image_id]))

    # Build every text file in memory first: a bad item stops the export before any write.
    def fname(prefix: str, split: str, ext: str) -> str:
        return f"{prefix}_{split}.{ext}" if split else f"{prefix}.{ext}"

    files: Dict[str, bytes] = {}
    info_names: Dict[str, str] = {}
    for split, rows in sorted(groups.items()):
        if format == "sharegpt":
            name = fname(dataset_name, split, "json")
            files[name] = _sharegpt(rows)
            info_names[name[:-len(".json")]] = name
        elif format == "llava":
            files[fname("llava", split, "json")] = _llava(rows)
        elif format == "jsonl":
            files[fname("items", split, "jsonl")] = _jsonl(rows, split)
        else:
            caps = [[img[len("images/"):], it.answer] for it, img in rows if it.type in CAPTION_TYPES]
            vqa = [[img[len("images/"):], _question(it), it.answer] for it, img in rows
                   if it.type not in CAPTION_TYPES]
            files[fname("captions", split, "csv")] = _csv(["Image Name", "Caption"], caps)
            files[fname("vqa", split, "csv")] = _csv(["Image Name", "Question", "Answer"], vqa)
        summary.items_by_split[split or "all"] = len(rows)
    if format == "sharegpt":
        files["dataset_info.json"] = _dataset_info(info_names)
    if pipeline_json is not None:
        files["pipeline.json"] = _pipeline_bytes(pipeline_json)

    try:
        out.mkdir(parents=True, exist_ok=True)
        report(progress, "images", 0, len(rel_of), "writing images")
        for iid, rel in sorted(rel_of.items()):
            check(cancel)
            _atomic_image(images[iid], out / rel, writer)
            summary.images_written += 1
            report(progress, "images", summary.images_written, len(rel_of), rel)
        for name, data in files.items():
            write_bytes_atomic(out / name, data)
            summary.files.append(name)
    except OSError as exc:
        raise ExportError(f"cannot write the export to {out}: {exc}") from exc
    return summary
