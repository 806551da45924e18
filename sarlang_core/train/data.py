"""What a run trains on: samples from a curation store, a sharegpt export folder or SARLANG-1M JSON/CSV.

    data = load_samples(config)            # TrainData: samples, problems, kind, pipeline recorded there
    data.samples[0]                        # TrainSample(id, image, question, answer, type, width, height)

A store gives its items of the chosen split and review statuses, their images read through the
project's Pipeline (unless the run names another); an export folder and SARLANG-1M files give
their images as stored (an export folder's images are already preprocessed: its pipeline.json is
recorded). Items whose image is missing are left out and reported; no items at all is a TrainError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..errors import TrainError
from .config import TrainConfig

IMAGE_TAG = "<image>"
KINDS = ("store", "export", "sarlang-json", "sarlang-csv")


@dataclass(frozen=True)
class TrainSample:
    id: str
    image: str          # absolute path of the image file
    question: str       # the user's text, without the <image> tag
    answer: str         # the supervised reply
    type: str = ""
    width: int = 0      # of the stored image (0: unknown until read)
    height: int = 0


@dataclass
class TrainData:
    samples: List[TrainSample] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    kind: str = ""
    source: str = ""
    pipeline: Optional[dict] = None     # the Pipeline a store records / an export was written with

    def summary(self) -> dict:
        types: Dict[str, int] = {}
        for s in self.samples:
            types[s.type or "unknown"] = types.get(s.type or "unknown", 0) + 1
        return {"source": self.source, "kind": self.kind, "samples": len(self.samples),
                "images": len({s.image for s in self.samples}), "types": types,
                "problems": len(self.problems), "first_problems": self.problems[:10]}


def source_kind(path: Path) -> str:
    if path.is_dir():
        if (path / "dataset_info.json").is_file():
            return "export"
        raise TrainError(f"{path}: a folder without dataset_info.json is not a dataset export "
                         "(give the export folder, a curation store .db, or a SARLANG-1M JSON/CSV)")
    suffix = path.suffix.lower()
    return {".json": "sarlang-json", ".csv": "sarlang-csv"}.get(suffix, "store")


def _strip_tag(text: str) -> str:
    return text.replace(IMAGE_TAG, "").strip()


def load_samples(config: TrainConfig, *, split: Optional[str] = None) -> TrainData:
    """The samples ``config`` selects (``split`` overrides its split: the evaluation split)."""
    src = Path(config.dataset).expanduser()
    if not src.exists():
        raise TrainError(f"{src}: dataset not found")
    split = split or config.split
    kind = source_kind(src)
    data = TrainData(kind=kind, source=str(src.resolve()))
    if kind == "store":
        _from_store(src, config, split, data)
    elif kind == "export":
        _from_export(src, config, split, data)
    else:
        root = Path(config.images).expanduser() if config.images else src.resolve().parent
        _from_file(src, kind, root, data, prefix="")
    if not data.samples:
        what = (f"split {split!r} with status {' or '.join(config.statuses)}" if kind == "store" else
                f"split {split!r}" if kind == "export" else "the file")
        first = f"; first problem: {data.problems[0]}" if data.problems else ""
        raise TrainError(f"{src}: no items to train on in {what} ({len(data.problems)} problem(s){first})")
    return data


def _resolve(path: str, roots: Iterable[Path]) -> Optional[Path]:
    p = Path(path).expanduser()
    for candidate in ((p,) if p.is_absolute() else tuple(r / p for r in roots)):
        if candidate.is_file():
            return candidate.resolve()
    return None


def _from_store(src: Path, config: TrainConfig, split: str, data: TrainData) -> None:
    from ..datasets.store import Store
    from ..errors import SarlangError

    try:
        with Store.open(src, create=False) as store:
            images = {img.id: img for img in store.images(None if split == "all" else split)}
            items = store.items(status=list(config.statuses))
            recorded = store.get_meta("pipeline")
    except SarlangError:
        raise
    except Exception as exc:   # sqlite3 raises several kinds for a file that is not a store
        raise TrainError(f"{src}: not a curation store ({type(exc).__name__}: {exc})") from None
    data.pipeline = json.loads(recorded) if isinstance(recorded, str) else recorded if isinstance(recorded, dict) \
        else None
    if not images:
        data.problems.append(f"{src}: no images in split {split!r} (run `sarlang-cli dataset split` first?)")
    roots = [Path(config.images).expanduser()] if config.images else [src.resolve().parent]
    missing: Dict[str, bool] = {}
    for it in items:
        img = images.get(it.image_id)
        if img is None:
            continue
        path = _resolve(img.path, roots)
        if path is None:
            if it.image_id not in missing:
                data.problems.append(f"{it.image_id}: image file not found ({img.path})")
            missing[it.image_id] = True
            continue
        data.samples.append(TrainSample(f"item-{it.id}", str(path), _strip_tag(it.question), it.answer.strip(),
                                        it.type, img.width, img.height))


def _export_files(folder: Path, split: str) -> List[Tuple[str, Path]]:
    try:
        info = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrainError(f"{folder}/dataset_info.json cannot be read ({exc})") from None
    if not isinstance(info, dict) or not info:
        raise TrainError(f"{folder}/dataset_info.json: expected an object naming at least one dataset")
    files = []
    for name, entry in info.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            raise TrainError(f"{folder}/dataset_info.json: dataset {name!r} has no file_name")
        columns = entry.get("columns") or {"messages": "messages", "images": "images"}
        if entry.get("formatting", "sharegpt") != "sharegpt" or columns.get("messages") != "messages":
            raise TrainError(f"{folder}/dataset_info.json: dataset {name!r} is not in the sharegpt 'messages' "
                             "layout (role/content), the one SARLANG-1M and this project's exports use")
        files.append((name, folder / entry["file_name"]))
    if split != "all":
        # The project's exports name one dataset per split ("sarlang_train"); a layout without
        # split names is one split already.
        named = [(n, f) for n, f in files if n.endswith("_train") or n.endswith("_test")]
        if named:
            files = [(n, f) for n, f in named if n.endswith(f"_{split}")]
    return files


def _from_export(folder: Path, config: TrainConfig, split: str, data: TrainData) -> None:
    pipeline_file = folder / "pipeline.json"
    if pipeline_file.is_file():
        try:
            data.pipeline = json.loads(pipeline_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data.problems.append(f"{pipeline_file}: unreadable; the images' preprocessing is not recorded")
    root = Path(config.images).expanduser() if config.images else folder
    for name, path in _export_files(folder, split):
        if not path.is_file():
            data.problems.append(f"{path}: listed in dataset_info.json but missing")
            continue
        _from_file(path, "sarlang-json", root, data, prefix=f"{name}:")


def _from_file(src: Path, kind: str, root: Path, data: TrainData, *, prefix: str) -> None:
    from ..datasets import importers

    try:
        result = (importers.import_sarlang_json(src, images_dir=root) if kind == "sarlang-json"
                  else importers.import_sarlang_csv(src, images_dir=root))
    except importers.DatasetError as exc:
        raise TrainError(str(exc)) from None
    data.problems.extend(f"{p.file}:{p.where}: {p.message}" for p in result.problems)
    sizes = {img.id: (img.path, img.width, img.height) for img in result.images}
    for index, it in enumerate(result.items):
        path, w, h = sizes.get(it.image_id, (it.image_id, 0, 0))
        found = _resolve(path, (root,))
        if found is None:
            continue
        data.samples.append(TrainSample(f"{prefix}q{index}", str(found), _strip_tag(it.question), it.answer.strip(),
                                        it.type, w, h))


def describe_source(path: Any) -> str:
    """A word for what ``path`` is (for forms): store, export, sarlang-json or sarlang-csv."""
    return source_kind(Path(path).expanduser())
