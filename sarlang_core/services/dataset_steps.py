"""The dataset steps with their checks, one path for the GUI's step dialogs and ``sarlang-cli
dataset``: checks that turn a bad path into a message a person can act on, then the steps in
``services.datasets``.

The GUI runs these on a worker lane, never on the UI thread. A step that would add to or write
over something that already exists raises :class:`NeedsConfirmation` instead; the dialog shows
the message and runs the step again with ``confirmed=True`` once the user agrees (the CLI passes
``confirmed=True``: adding to a project is what its import commands do).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..datasets.importers import IMAGE_EXTENSIONS, DatasetError
from ..errors import SarlangError
from ..progress import check
from . import datasets as svc
from .dataset_common import open_store, project_pipeline
from .datasets import StepSummary

__all__ = ["IMAGE_EXTENSIONS", "DatasetError", "NeedsConfirmation", "ImportRequest", "ImportOutcome", "run_import",
           "project_info", "run_templates", "run_split", "run_export"]


class NeedsConfirmation(SarlangError):
    """The step would add to or write over existing data; ``button`` is the text that agrees;
    ``option``: what agreeing turns on besides ``confirmed`` ("replace": ImportRequest.replace)."""

    def __init__(self, message: str, button: str, option: str = ""):
        super().__init__(message)
        self.button = button
        self.option = option


@dataclass
class ImportRequest:
    store_path: str
    kind: str                   # "coco" | "sarlang" (JSON or CSV, by extension) | "pairs"
    source: str                 # the annotation file; for "pairs" the SAR images folder
    folder: Optional[str]       # the images folder; for "pairs" the optical images folder. None (the CLI
                                # without --images): the images are not looked for
    templates: bool = False     # generate the paper's template questions after the import
    seed: int = 0
    per_image: int = 9
    replace: bool = False       # the source is already in the project: remove what it brought, import anew


@dataclass
class ImportOutcome:
    summary: StepSummary
    templates: Optional[StepSummary]
    store_path: str
    created: bool               # this import made the project file
    removed: bool               # a new project that received nothing is not left behind


def _need_path(path: str, what: str, missing_hint: str = "") -> Path:
    """``path`` (typed by the user) as an existing Path, else a DatasetError saying what to choose."""
    if not path.strip():
        raise DatasetError(f"Choose the {what}.")
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetError(f"The {what} {p} does not exist{missing_hint}.")
    return p


def _need_folder(path: str, what: str) -> Path:
    p = _need_path(path, what, "; choose the folder that holds the images")
    if not p.is_dir():
        raise DatasetError(f"The {what} {p} is a file, not a folder.")
    with os.scandir(p) as entries:
        if not any(e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS) for e in entries):
            raise DatasetError(f"The {what} {p} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                               f"choose the folder the annotations refer to.")
    return p


def _need_file(path: str, what: str) -> Path:
    p = _need_path(path, what)
    if p.is_dir():
        raise DatasetError(f"{p} is a folder; choose the {what} itself.")
    return p


def _store_stats(path: Path) -> dict:
    from ..datasets.store import StoreError

    try:
        with open_store(path, create=False) as store:
            stats = store.stats()
            stats["template_items"] = store.count_items(source="template")
            return stats
    except StoreError as exc:
        raise DatasetError(f"{path} exists and is not a dataset project ({exc}). It was left untouched; "
                           f"choose another file name.") from None


def _target(path: str) -> tuple:
    """(project path, its stats or None when there is no project there yet)."""
    if not path.strip():
        raise DatasetError("Choose where to save the project (a .db file).")
    p = Path(path).expanduser()
    if p.is_dir():
        raise DatasetError(f"{p} is a folder; give the project a file name ending in .db.")
    if not p.parent.is_dir():
        raise DatasetError(f"The folder {p.parent} does not exist; choose where to save the project.")
    if p.exists() and p.stat().st_size > 0:
        return p, _store_stats(p)
    return p, None


def _remove_store(p: Path) -> None:
    for f in (p, Path(f"{p}-wal"), Path(f"{p}-shm")):
        try:
            f.unlink()
        except FileNotFoundError:
            pass


def run_import(req: ImportRequest, *, confirmed: bool = False, adding: bool = False, progress=None,
               cancel=None) -> ImportOutcome:
    """Check every path, then import (and, when asked, generate the template questions).

    ``adding``: the user already chose this project (Import more), so adding to it needs no
    confirmation unless the template step would give existing images a second set."""
    folder: Optional[Path]
    if req.kind == "pairs":
        source = _need_folder(req.source, "SAR images folder")
        folder = _need_folder(req.folder or "", "optical images folder")
    elif req.kind in ("coco", "sarlang"):
        source = _need_file(req.source, "annotation file")
        folder = None if req.folder is None else _need_folder(req.folder, "images folder")
    else:
        raise DatasetError(f"unknown import kind {req.kind!r}; expected coco, sarlang or pairs")
    store, stats = _target(req.store_path)
    if stats is not None and not req.replace:
        _refuse_reimport(store, source, confirmed)
    if stats is not None and not confirmed:
        if not adding:
            raise NeedsConfirmation(f"{store.name} is already a dataset project ({stats['images']:,} images, "
                                    f"{stats['items']:,} items). Importing adds to it; nothing in it is removed.",
                                    "Add to this project")
    kind = {"coco": "coco", "pairs": "pairs"}.get(req.kind)
    if kind is None:
        kind = "sarlang-csv" if source.suffix.lower() == ".csv" else "sarlang-json"
    folders = {"optical_dir": folder} if kind == "pairs" else {"images_dir": folder}
    summary = svc.import_into(store, kind, source, replace=req.replace, progress=progress, **folders)
    created, removed, templates = stats is None, False, None
    if created and not summary.done.get("images") and not summary.done.get("items"):
        _remove_store(store)        # nothing usable came in: leave no empty project behind
        removed = True
    elif req.templates and summary.done.get("boxes"):
        check(cancel)
        templates = svc.generate_templates(store, seed=req.seed, per_image=req.per_image, progress=progress,
                                           cancel=cancel)
    return ImportOutcome(summary, templates, str(store), created, removed)


def _refuse_reimport(store: Path, source: Path, confirmed: bool) -> None:
    """An import of a source already in the project would add its records twice: the CLI is told
    to pass --replace, the GUI asks (and runs again with ``replace``)."""
    with open_store(store, create=False) as s:
        if not s.is_imported(str(source.resolve())):
            return
    if confirmed:
        raise DatasetError(f"{source} is already imported into {store}; importing it again would add its records "
                           f"twice. Pass --replace to remove what it brought in and import it anew.")
    raise NeedsConfirmation(f"{source.name} is already imported into {store.name}. Replace it: what it brought in "
                            f"(its images, boxes, items and their template questions, reviews and flags) is "
                            f"removed and the file is imported anew.", "Replace it", option="replace")


# ---------------------------------------------------------------------------- the later steps
def project_info(store_path: str) -> dict:
    """What the step dialogs show before a run: the store's counts, its template items and its
    Pipeline (the paper's chain when the project records none)."""
    with open_store(store_path, create=False) as store:
        info = store.stats()
        info["template_items"] = store.count_items(source="template")
        info["reviewed_items"] = store.count_items(status=["accepted", "edited"])
        info["pipeline_recorded"] = store.get_meta("pipeline") is not None
        info["pipeline"] = project_pipeline(store).describe()
    return info


def run_templates(store_path: str, *, seed: int, per_image: int, confirmed: bool = False, progress=None,
                  cancel=None) -> StepSummary:
    info = project_info(store_path)
    if not info["boxes"]:
        raise DatasetError("This project has no detection boxes, and the paper's templates ask about boxes. "
                           "Import COCO annotations (Dataset ▸ Import more…) first.")
    # images that already have template items are skipped (never a second set), so nothing to confirm
    return svc.generate_templates(store_path, seed=seed, per_image=per_image, progress=progress, cancel=cancel)


def run_split(store_path: str, *, ratio: float, seed: int) -> tuple:
    """(summary, how many images kept the split they already had)."""
    kept = sum(v for k, v in project_info(store_path)["images_per_split"].items() if k != "unassigned")
    return svc.split_images(store_path, ratio=ratio, seed=seed), kept


def run_export(store_path: str, out_dir: str, *, fmt: str, status: str, preprocess: bool,
               confirmed: bool = False, progress=None, cancel=None) -> StepSummary:
    if not out_dir.strip():
        raise DatasetError("Choose the output folder.")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out} is a file; choose a folder for the training set.")
    info = project_info(store_path)
    if status == "accepted" and not info["reviewed_items"]:
        raise DatasetError("No item is accepted or edited yet, so there is nothing to export: review items "
                           "first (A accepts), or export items of any status.")
    if not info["items"]:
        raise DatasetError("The project has no items to export yet.")
    if out.is_dir() and not confirmed:
        n = sum(1 for _ in out.iterdir())
        if n:
            raise NeedsConfirmation(f"{out} already holds {n:,} entries. Exporting writes into it: files with "
                                    f"the same names are replaced, the others are left as they are.",
                                    "Export into it")
    return svc.export_project(store_path, out, fmt=fmt, status=status, preprocess=preprocess,
                              progress=progress, cancel=cancel)
