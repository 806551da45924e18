"""The samples of a benchmark run, from a curation store or a released SARLANG-1M JSON / CSV.

VQA: one sample per question. Captions: one sample per (image, caption type), with every caption
of that type as a reference (the paper has one per image; more are scored as COCO does).
Sample ids are stable for an unchanged source: ``item-<store id>`` or ``q<position in file>``
for questions, ``<type>:<image id>`` for captions. Samples whose image file is missing are left
out and reported, never fatal.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .run_config import CAPTION_TYPES, BenchmarkError, DatasetSpec


@dataclass(frozen=True)
class Sample:
    id: str
    image: str                        # absolute path of the image file
    question: str                     # the raw question (captions: the item's prompt)
    references: Tuple[str, ...]       # ground truth answer(s) / caption(s)
    type: str                         # item type (caption_concise, counting, ...)
    image_id: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["references"] = list(self.references)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Sample":
        return cls(str(d["id"]), str(d["image"]), str(d.get("question", "")), tuple(d.get("references", ())),
                   str(d.get("type", "")), str(d.get("image_id", "")))


@dataclass
class SampleSet:
    samples: List[Sample] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    kind: str = ""                    # "store" | "sarlang-json" | "sarlang-csv"


def source_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "sarlang-json"
    if suffix == ".csv":
        return "sarlang-csv"
    return "store"


def load_samples(spec: DatasetSpec, types: Tuple[str, ...]) -> SampleSet:
    """The samples ``spec`` selects, of the given item ``types``, in a stable order."""
    src = Path(spec.source).expanduser()
    if not src.exists():
        raise BenchmarkError(f"{src}: dataset not found")
    kind = source_kind(src)
    out = SampleSet(kind=kind)
    rows = _store_rows(src, spec, types, out) if kind == "store" else _file_rows(src, kind, types, out)
    root = Path(spec.images).expanduser() if spec.images else src.resolve().parent
    captions: "OrderedDict[str, list]" = OrderedDict()
    missing: Dict[str, bool] = {}
    for sid, image_id, path, typ, question, answer in rows:
        image = _resolve(path, root, src.resolve().parent)
        if image is None:
            if image_id not in missing:
                out.problems.append(f"{image_id}: image file not found (looked under {root})")
            missing[image_id] = True
            continue
        if typ in CAPTION_TYPES:
            key = f"{typ}:{image_id}"
            if key not in captions:
                captions[key] = [image, question, [], typ, image_id]
            captions[key][2].append(answer)
        else:
            out.samples.append(Sample(sid, str(image), question, (answer,), typ, image_id))
    for key, (image, question, refs, typ, image_id) in captions.items():
        out.samples.append(Sample(key, str(image), question, tuple(refs), typ, image_id))
    if spec.limit is not None:
        out.samples = out.samples[:spec.limit]
    if not out.samples:
        raise BenchmarkError(f"{src}: no samples of type(s) {', '.join(types)} in split {spec.split!r}"
                             + (f" ({len(out.problems)} problem(s), first: {out.problems[0]})" if out.problems else ""))
    return out


def _resolve(path: str, root: Path, src_dir: Path) -> Optional[Path]:
    p = Path(path).expanduser()
    for candidate in ((p,) if p.is_absolute() else (root / p, src_dir / p)):
        if candidate.is_file():
            return candidate.resolve()
    return None


def _store_rows(src: Path, spec: DatasetSpec, types, out: SampleSet):
    from ..datasets.store import Store

    with Store.open(src) as store:
        images = {img.id: img for img in store.images(None if spec.split == "all" else spec.split)}
        items = store.items(type=list(types), status=list(spec.status) or None)
    if not images:
        out.problems.append(f"{src}: no images in split {spec.split!r} (run `sarlang-cli dataset split` first?)")
    for it in items:
        img = images.get(it.image_id)
        if img is not None:
            yield f"item-{it.id}", it.image_id, img.path, it.type, it.question, it.answer


def _file_rows(src: Path, kind: str, types, out: SampleSet):
    from ..datasets import importers

    result = (importers.import_sarlang_json(src) if kind == "sarlang-json" else importers.import_sarlang_csv(src))
    out.problems.extend(f"{p.file}:{p.where}: {p.message}" for p in result.problems)
    paths = {img.id: img.path for img in result.images}
    for index, it in enumerate(result.items):   # ids count every item, so a filter never renumbers
        if it.type in types:
            yield f"q{index}", it.image_id, paths.get(it.image_id, it.image_id), it.type, it.question, it.answer
