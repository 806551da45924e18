"""Dataset projects end to end: import annotations, generate template VQA, QC, split, export,
statistics (answer distributions) and the paper's overall similarity (``similarity_stats``).

Each function opens the project's store, does one step in transactions, and returns a summary;
problems with individual records are reported, never fatal.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..datasets.importers import DatasetError
from ..progress import CancelToken, Progress, ProgressCallback, check, report
from .dataset_common import open_store, project_pipeline, render_image
from .dataset_similarity import PAPER_SIMILARITY, TEXT_KINDS, similarity_stats  # noqa: F401


@dataclass
class StepSummary:
    done: Dict[str, float] = field(default_factory=dict)   # counts, and the run's cost in USD
    problems: List[str] = field(default_factory=list)
    files: List[str] = field(default_factory=list)      # what the step wrote (export)

    def lines(self) -> List[str]:
        out = [f"{k}: {v:,}" for k, v in self.done.items()]
        out += [f"wrote {f}" for f in self.files]
        if self.problems:
            out.append(f"{len(self.problems)} problem(s):")
            out += [f"  {p}" for p in self.problems[:50]]
            if len(self.problems) > 50:
                out.append(f"  … and {len(self.problems) - 50} more")
        return out


def _problem_text(p) -> str:
    where = f":{p.where}" if getattr(p, "where", None) not in (None, "") else ""
    return f"{p.file}{where}: {p.message}"


def import_into(store_path, kind: str, source, *, images_dir=None, optical_dir=None, replace: bool = False,
                progress: Optional[ProgressCallback] = None) -> StepSummary:
    """kind: "coco" | "sarlang-json" | "sarlang-csv" | "pairs". One transaction: a killed import
    leaves the project as it was. A source (by absolute path) already in the project is refused
    (StoreError naming it) unless ``replace``, which removes what it brought in first."""
    from ..datasets import importers

    source = Path(source).resolve()
    report(progress, "import", 0, 1, str(source))
    if kind == "coco":
        result = importers.import_coco(source, images_dir)
    elif kind == "sarlang-json":
        result = importers.import_sarlang_json(source, images_dir)
    elif kind == "sarlang-csv":
        result = importers.import_sarlang_csv(source, images_dir)
    elif kind == "pairs":
        result = importers.import_pairs(source, optical_dir)
    else:
        raise ValueError(f"unknown import kind {kind!r}")
    with open_store(store_path) as store:
        done = store.import_records(str(source), result.images, result.boxes, result.items, kind=kind,
                                    replace=replace)
    report(progress, "import", 1, 1)
    return StepSummary(dict(done), [_problem_text(p) for p in result.problems])


def generate_templates(store_path, *, seed: int = 0, per_image: int = 9,
                       progress: Optional[ProgressCallback] = None,
                       cancel: Optional[CancelToken] = None) -> StepSummary:
    from ..datasets.templates import TemplateConfig, generate

    with open_store(store_path, create=False) as store:
        images = list(store.images())
        boxes = defaultdict(list)
        for img in images:
            boxes[img.id] = store.boxes(img.id)
        config = TemplateConfig(seed=seed, per_image=per_image)
        made = [0]

        def step() -> None:     # every 10,000 items, inside the one transaction
            check(cancel)
            made[0] += 10_000
            report(progress, "generate", made[0], made[0])

        out = store.add_template_items(generate(images, boxes, config), cancel=step)
        store.set_meta("template_seed", str(seed))
    done: Dict[str, float] = {"images": len(images), "items": out["items"]}
    if out["images skipped"]:
        done["images skipped (already have template items)"] = out["images skipped"]
    return StepSummary(done)


def llm_generate(store_path, endpoint: str, model: str, *, concurrency: int = 4, cache_dir=None,
                 prompts_path=None, only_new: bool = True, price_in: Optional[float] = None,
                 price_out: Optional[float] = None,
                 progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None) -> StepSummary:
    """Captions and general inquiries written from each pair's optical image (modality transfer),
    through ``dataset_llm.run_generation`` (what the GUI dialog runs). Every answer is cached on
    disk, so a re-run or a run after a crash costs nothing again; ``only_new`` skips the pairs
    that already have LLM items."""
    from ..datasets.llm_generation import DEFAULT_PROMPTS, PromptSet
    from .dataset_llm import LLMRequest, run_generation

    prompts = PromptSet.load(prompts_path) if prompts_path else DEFAULT_PROMPTS
    req = LLMRequest(str(store_path), endpoint, model, prompts=prompts, concurrency=concurrency,
                     price_in=price_in, price_out=price_out, only_new=only_new,
                     cache_dir=str(cache_dir) if cache_dir else None)

    def forward(p) -> None:
        if progress is not None:
            progress(Progress(p.stage, p.done, p.total, p.message))

    out = run_generation(req, progress=forward, cancel=cancel)
    done = {"pairs": out.pairs, "items": out.items_added, "requests": out.requests, "cache hits": out.cache_hits,
            "prompt tokens": out.prompt_tokens, "completion tokens": out.completion_tokens,
            "estimated cost (USD, this run)": round(out.cost_usd, 4)}
    lines = list(out.problems) + ([f"stopped: {out.stopped_by}"] if out.stopped_by else [])
    return StepSummary(done, lines)


def run_quality_checks(store_path, *, progress: Optional[ProgressCallback] = None,
                       cancel: Optional[CancelToken] = None) -> StepSummary:
    """Flag suspect items (see datasets.qc). Everything is checked before the old flags are
    replaced, so a cancelled run leaves the previous flags as they were."""
    from ..datasets.qc import run_qc

    with open_store(store_path, create=False) as store:
        items = store.items()
        boxes = {img.id: store.boxes(img.id) for img in store.images()}
        flagged, rows = 0, []
        by_code: Dict[str, int] = defaultdict(int)
        report(progress, "qc", 0, len(items), "checking items")
        for n, (item, flags) in enumerate(run_qc(items, boxes), 1):
            for f in flags:
                rows.append((item.id, f.code, f.message))
                by_code[f.code] += 1
            flagged += bool(flags)
            if n % 5000 == 0:
                check(cancel)
                report(progress, "qc", n, len(items), "checking items")
        store.clear_flags()
        store.add_flags(rows)
        report(progress, "qc", len(items), len(items), "flags stored")
    return StepSummary({"items checked": len(items), "items flagged": flagged,
                        **{f"flag {k}": v for k, v in by_code.items()}})


def split_images(store_path, *, ratio: float = 0.7, seed: int = 0) -> StepSummary:
    from ..datasets.splits import split_by_image

    with open_store(store_path, create=False) as store:
        images = list(store.images())
        keep = {img.id: img.split for img in images if img.split}
        assignment = split_by_image([img.id for img in images], ratio=ratio, seed=seed, keep=keep or None)
        for name in ("train", "test"):
            store.set_split([i for i, s in assignment.items() if s == name], name)
    counts: Dict[str, int] = defaultdict(int)
    for s in assignment.values():
        counts[s] += 1
    return StepSummary({f"{k} images": v for k, v in counts.items()})


def export_project(store_path, out_dir, *, fmt: str = "sharegpt", status: str = "accepted",
                   preprocess: bool = True, progress: Optional[ProgressCallback] = None,
                   cancel: Optional[CancelToken] = None, statuses: Optional[Sequence[str]] = None,
                   pipeline: Any = None) -> StepSummary:
    """``status``: "accepted" (accepted and edited items), "any", or one status; ``statuses``
    (several, e.g. a training run's) replaces it. With ``preprocess`` the images are written as
    PNG through ``pipeline`` (a Pipeline or its dict; default: the project's, the paper's chain
    unless the project records another) and the Pipeline JSON lands beside them."""
    from ..datasets.export import export_dataset
    from ..preprocess.pipeline import Pipeline

    if statuses is not None:
        statuses = tuple(statuses)
        status = " or ".join(statuses)
    else:
        statuses = {"accepted": ("accepted", "edited"), "any": None}.get(status, (status,))
    with open_store(store_path, create=False) as store:
        if not store.count_items(status=statuses):
            which = "any status" if statuses is None else " or ".join(statuses)
            raise DatasetError(f"nothing to export: no item of {which} matches --status {status} "
                               f"({store.count_items():,} items in the project); review items first "
                               f"(sarlang-cli dataset review) or choose another --status")
        items = store.items()
        images = {img.id: img for img in store.images()}
        recorded = store.get_meta("pipeline")
        if pipeline is None:
            pipeline = project_pipeline(store)
        elif isinstance(pipeline, dict):
            pipeline = Pipeline.from_dict(pipeline)
    root = Path(store_path).resolve().parent
    writer = _preprocessed_writer(pipeline, root) if preprocess else None
    summary = export_dataset(items, images, Path(out_dir), format=fmt, image_writer=writer,
                             pipeline_json=pipeline.to_dict() if preprocess else recorded, statuses=statuses,
                             image_root=root, progress=progress, cancel=cancel)
    done: Dict[str, float] = {"items exported": summary.items_written, "images written": summary.images_written}
    done.update({f"{split} items": n for split, n in summary.items_by_split.items()})
    return StepSummary(done, files=list(summary.files))


def _preprocessed_writer(pipeline, root: Path):
    """Writes one image through ``pipeline`` as an 8-bit PNG (the image a model is trained on)."""
    from PIL import Image

    def write(record, dest) -> None:
        Image.fromarray(render_image(record, pipeline, root)).save(dest, format="PNG")

    return write


def answer_distribution(store_path, *, top: int = 20, status=None) -> Dict[str, dict]:
    """Per item type present: ``AnswerDistribution.to_dict()`` (see ``datasets.answer_stats``):
    {type, kind: "answers"|"numeric"|"length", total, distinct, top: [{answer, count, share}],
    other, other_share, numeric: [[number, count]], unparsed, length: None or {mean, median, p95,
    min, max, bins: [{lo, hi, count}]}}."""
    from ..datasets.answer_stats import answer_distribution as distribution

    with open_store(store_path, create=False) as store:
        return {t: d.to_dict() for t, d in distribution(store, top=top, status=status).items()}


def project_stats(store_path, *, top: int = 20, status=None) -> dict:
    """``Store.stats()`` plus "answers": ``answer_distribution(store_path, top=top, status=status)``."""
    from ..datasets.answer_stats import answer_distribution as distribution

    with open_store(store_path, create=False) as store:
        stats = store.stats()
        stats["answers"] = {t: d.to_dict() for t, d in distribution(store, top=top, status=status).items()}
    return stats
