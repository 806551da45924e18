"""`sarlang-cli`: every capability from a shell.

Errors print one line on stderr naming the file and the problem and exit 1 (2 for usage);
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from .errors import SarlangError
from .evaluate.cli import add_bench_parser, cmd_bench

FILTER_CHOICES = ("none", "boxcar", "median", "lee", "refined-lee", "frost", "gamma-map")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: one line, exit 2
        self.exit(2, f"{self.prog}: usage error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sarlang-cli", description="SARLANG Studio from the command line.")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    info = sub.add_parser("info", help="describe a scene as JSON")
    info.add_argument("path")

    pre = sub.add_parser("preprocess", help="apply the preprocessing chain and write a GeoTIFF")
    pre.add_argument("input")
    pre.add_argument("output")
    pre.add_argument("--pipeline", metavar="FILE.json", help="start from a saved pipeline; flags override it")
    pre.add_argument("--band", help="band index (0-based) or polarisation name, e.g. VV")
    pre.add_argument("--filter", choices=FILTER_CHOICES)
    pre.add_argument("--window", type=int, help="filter window (odd)")
    pre.add_argument("--looks", type=float, help="looks for Lee / Gamma-MAP")
    pre.add_argument("--damping", type=float, help="Frost damping factor")
    pre.add_argument("--snap-exact", action="store_true", default=None, help="SNAP's refined-Lee quirks")
    db = pre.add_mutually_exclusive_group()
    db.add_argument("--db", dest="db", action="store_true", default=None, help="10 log10 (default)")
    db.add_argument("--no-db", dest="db", action="store_false", help="keep linear values")
    pre.add_argument("--stretch", metavar="LO,HI|none", help="percentile stretch to uint8 (default 2,98)")
    pre.add_argument("--exact-limits", action="store_true", help="exact scene-wide percentiles (a full extra pass)")
    pre.add_argument("--compress", choices=("zstd", "deflate", "lzw", "none"), default="zstd",
                     help="GeoTIFF compression (default zstd; deflate for older GIS tools)")
    pre.add_argument("--no-overviews", dest="overviews", action="store_false",
                     help="skip building overviews in the output (faster; slower to open later)")
    pre.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (never the input)")
    pre.add_argument("--quiet", action="store_true", help="no progress bar")
    for name, help_text in (("ask", "ask a vision-language model about a scene or a region"),
                            ("caption", "caption a scene with the paper's prompt")):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("scene")
        if name == "ask":
            cmd.add_argument("question")
        _add_model_args(cmd)

    _add_dataset_parser(sub)
    add_bench_parser(sub)

    models = sub.add_parser("models", help="list the installed models and check each")
    models.add_argument("--registry", help="registry JSON (default: SARLANG_MODELS, models/registry.json, user config)")
    models.add_argument("--json", action="store_true", help="print JSON")
    return p


def _add_dataset_parser(sub) -> None:
    ds = sub.add_parser("dataset", help="build and curate SAR VQA / caption datasets")
    dsub = ds.add_subparsers(dest="dataset_command", metavar="STEP", parser_class=_Parser)
    dsub.required = True
    coco = dsub.add_parser("import-coco", help="import COCO detection annotations (SARDet-100K)")
    coco.add_argument("annotations")
    coco.add_argument("--images", help="image folder (checked for missing files)")
    coco.add_argument("--store", required=True)
    sl = dsub.add_parser("import-sarlang", help="import released SARLANG-1M JSON or CSV")
    sl.add_argument("path")
    sl.add_argument("--images")
    sl.add_argument("--store", required=True)
    pairs = dsub.add_parser("import-pairs", help="import SAR/optical pairs matched by name")
    pairs.add_argument("sar_dir")
    pairs.add_argument("optical_dir")
    pairs.add_argument("--store", required=True)
    gen = dsub.add_parser("generate", help="template VQA from the boxes (the paper's five types)")
    gen.add_argument("--store", required=True)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--per-image", type=int, default=9)
    llm = dsub.add_parser("llm", help="captions and general questions from the optical pairs, by an LLM")
    llm.add_argument("--store", required=True)
    llm.add_argument("--endpoint", required=True, help="OpenAI-compatible base URL (key: OPENAI_API_KEY or keyring)")
    llm.add_argument("--model", required=True, help="e.g. gpt-4o, or the model a local server serves")
    llm.add_argument("--concurrency", type=int, default=4)
    llm.add_argument("--cache", help="response cache folder (default: beside the store)")
    llm.add_argument("--prompts", help="prompt templates JSON (see llm_generation.PromptSet)")
    llm.add_argument("--all-pairs", action="store_true",
                     help="ask about every pair, also those that already have LLM items (answers come from the cache)")
    llm.add_argument("--price-in", type=float, help="USD per 1M input tokens (default: the known price of --model)")
    llm.add_argument("--price-out", type=float, help="USD per 1M output tokens")
    qc = dsub.add_parser("qc", help="flag suspect items (colour words, vocabulary, counts, duplicates, length)")
    qc.add_argument("--store", required=True)
    st = dsub.add_parser("stats", help="items per type, status, source; categories; answer distributions")
    st.add_argument("--store", required=True)
    st.add_argument("--json", action="store_true")
    st.add_argument("--top", type=int, default=20, help="answers listed per question type (default 20)")
    st.add_argument("--status", choices=("pending", "accepted", "edited", "rejected"), action="append",
                    help="answer distributions of items with this status only (repeatable)")
    sim = dsub.add_parser("similarity", help="the paper's overall text / image similarity (mean, variance)")
    sim.add_argument("--store", required=True)
    sim.add_argument("--text", choices=("captions", "questions", "answers", "qa", "none"), default="captions",
                     help="which texts to embed with Sentence-BERT all-MiniLM-L6-v2 (default captions)")
    img = sim.add_mutually_exclusive_group()
    img.add_argument("--image-features", metavar="F.npy",
                     help="(images x d) features; rows in store image-id order, or as listed in F.ids.txt")
    img.add_argument("--image-model", metavar="DIR", help="local HuggingFace vision model folder (ViT, DINOv2, CLIP)")
    sim.add_argument("--status", choices=("pending", "accepted", "edited", "rejected"), action="append",
                     help="only items with this status (repeatable); images: those with such an item")
    sim.add_argument("--json", action="store_true")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sp = dsub.add_parser("split", help="train/test split by image (given splits are kept)")
    sp.add_argument("--store", required=True)
    sp.add_argument("--ratio", type=float, default=0.7)
    sp.add_argument("--seed", type=int, default=0)
    ex = dsub.add_parser("export", help="export items for fine-tuning")
    ex.add_argument("--store", required=True)
    ex.add_argument("--format", choices=("sharegpt", "llava", "jsonl", "csv"), default="sharegpt")
    ex.add_argument("--out", required=True)
    ex.add_argument("--status", choices=("accepted", "any", "pending", "rejected", "edited"), default="accepted")


def cmd_dataset(args) -> int:
    from .services import datasets as svc

    step = args.dataset_command
    with _progress_bar(False, unit="item") as progress:
        summary = _dataset_step(svc, step, args, progress) if step not in ("similarity", "stats") else None
    if summary is not None:
        print("\n".join(summary.lines()))
        return 0
    if step == "similarity":
        from .cli_dataset import similarity

        return similarity(svc, args)
    else:  # stats
        stats = svc.project_stats(args.store, top=args.top, status=args.status)
        answers = stats.pop("answers")
        if args.json:
            print(json.dumps({**stats, "answers": answers}, indent=2))
        else:
            from .cli_dataset import answer_tables

            print("\n".join(f"{k}: {v}" for k, v in stats.items()))
            print("\n".join(answer_tables(answers)))
        return 0


def _dataset_step(svc, step: str, args, progress):
    """Run one `dataset` step that ends in a StepSummary, with a progress bar on a terminal."""
    if step == "import-coco":
        return svc.import_into(args.store, "coco", args.annotations, images_dir=args.images, progress=progress)
    if step == "import-sarlang":
        kind = "sarlang-csv" if str(args.path).lower().endswith(".csv") else "sarlang-json"
        return svc.import_into(args.store, kind, args.path, images_dir=args.images, progress=progress)
    if step == "import-pairs":
        return svc.import_into(args.store, "pairs", args.sar_dir, optical_dir=args.optical_dir, progress=progress)
    if step == "generate":
        return svc.generate_templates(args.store, seed=args.seed, per_image=args.per_image, progress=progress)
    if step == "llm":
        return svc.llm_generate(args.store, args.endpoint, args.model, concurrency=args.concurrency,
                                cache_dir=args.cache, prompts_path=args.prompts, only_new=not args.all_pairs,
                                price_in=args.price_in, price_out=args.price_out, progress=progress)
    if step == "qc":
        return svc.run_quality_checks(args.store, progress=progress)
    if step == "split":
        return svc.split_images(args.store, ratio=args.ratio, seed=args.seed)
    return svc.export_project(args.store, args.out, fmt=args.format, status=args.status, progress=progress)


def _add_model_args(cmd) -> None:
    cmd.add_argument("--model", help="registered model name or model folder; with --endpoint the served model's name")
    cmd.add_argument("--adapter", help="LoRA adapter folder (local models)")
    cmd.add_argument("--endpoint", help="OpenAI-compatible base URL, e.g. http://gpu-box:8000/v1 (key: OPENAI_API_KEY)")
    cmd.add_argument("--registry", help="model registry JSON")
    cmd.add_argument("--region", metavar="X,Y,W,H", help="ask about this region (full-resolution pixels)")
    cmd.add_argument("--max-new-tokens", type=int, default=256)
    cmd.add_argument("--temperature", type=float, default=0.0)
    cmd.add_argument("--top-p", type=float, default=1.0)
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--max-pixels", type=int, default=1024 * 1024, help="pixel budget of the image sent")
    cmd.add_argument("--convention", choices=("qwen2.5-vl", "qwen2-vl", "sarlang", "geochat"),
                     help="how the model writes boxes (default: from the model family)")
    cmd.add_argument("--pipeline", metavar="FILE.json", help="preprocessing recipe (default: the paper's chain)")
    cmd.add_argument("--band", help="band index or polarisation name")
    cmd.add_argument("--geojson", metavar="OUT.geojson", help="write the boxes of the answer as GeoJSON")
    cmd.add_argument("--transcript", metavar="OUT.md|OUT.json", help="write the exchange as Markdown or JSON")


def _pipeline_from_args(args):
    from .preprocess.pipeline import Pipeline, StretchSpec

    pipe = Pipeline.load(args.pipeline) if args.pipeline else Pipeline()
    if args.band is not None:
        pipe = pipe.with_(band=int(args.band) if args.band.lstrip("-").isdigit() else args.band)
    changes = {k: v for k, v in (("name", args.filter), ("window", args.window), ("looks", args.looks),
                                 ("damping", args.damping), ("snap_exact", args.snap_exact)) if v is not None}
    if changes:
        pipe = pipe.with_filter(**changes)
    if args.db is not None:
        pipe = pipe.with_(db=args.db)
    if args.stretch is not None:
        if args.stretch.strip().lower() == "none":
            pipe = pipe.with_(stretch=None)
        else:
            try:
                lo, hi = (float(v) for v in args.stretch.split(","))
            except ValueError:
                raise SarlangError(f"--stretch wants LO,HI percentiles or 'none', got {args.stretch!r}") from None
            pipe = pipe.with_(stretch=StretchSpec(lo, hi))
    if args.exact_limits and pipe.stretch is not None:
        pipe = pipe.with_(stretch=StretchSpec(pipe.stretch.low, pipe.stretch.high, "exact"))
    return pipe


def cmd_info(args) -> int:
    from .io import open_scene

    with open_scene(args.path) as scene:
        print(json.dumps(scene.info(), indent=2))
    return 0


def cmd_preprocess(args) -> int:
    from .services import SceneSession
    from .services.export import export_processed

    pipeline = _pipeline_from_args(args)
    session = SceneSession.open(args.input)
    try:
        session.filter_key(pipeline)  # fail early on a band the scene lacks
        with _progress_bar(args.quiet) as progress:
            out = export_processed(session, pipeline, args.output, overwrite=args.overwrite,
                                   compress=args.compress, overviews=args.overviews, progress=progress)
    finally:
        session.close()
    print(out)
    return 0


class _progress_bar:
    """A tqdm bar on a terminal; silent otherwise (pipes, CI)."""

    def __init__(self, quiet: bool, unit: str = "block"):
        self.enabled = not quiet and sys.stderr.isatty()
        self.unit = unit
        self.bars = {}

    def __enter__(self):
        return self if self.enabled else None

    def __call__(self, p):
        from tqdm import tqdm

        bar = self.bars.get(p.stage)
        if bar is None:
            bar = self.bars[p.stage] = tqdm(total=p.total if p.total > 0 else None, desc=p.stage, unit=self.unit,
                                            file=sys.stderr, leave=True)
        bar.n = p.done
        bar.refresh()

    def __exit__(self, *exc):
        for bar in self.bars.values():
            bar.close()


def cmd_ask(args) -> int:
    from .preprocess.pipeline import Pipeline
    from .services import SceneSession
    from .services.chat import Conversation, ask
    from .services.model_input import model_image
    from .vlm.backend import GenerationConfig
    from .vlm.factory import make_backend
    from .vlm.prompts import caption_prompt, vqa_prompt

    if args.command == "ask":
        question = vqa_prompt(args.question)
    else:
        question = caption_prompt()
    pipeline = Pipeline.load(args.pipeline) if args.pipeline else Pipeline()
    if args.band is not None:
        pipeline = pipeline.with_(band=int(args.band) if args.band.isdigit() else args.band)
    config = GenerationConfig(args.max_new_tokens, args.temperature, args.top_p, args.seed)
    region = _parse_region(args.region) if args.region else None
    backend = make_backend(args.model, adapter=args.adapter, endpoint=args.endpoint, registry=args.registry)
    session = SceneSession.open(args.scene)
    try:
        img = model_image(session, pipeline, source="region" if region else "scene", rect=region,
                          max_pixels=args.max_pixels)
        backend.load()
        conv = Conversation(str(session.scene.path), pipeline)
        for piece in ask(backend, conv, img, question, config, convention=args.convention):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        ex = conv.exchanges[-1]
        for b in ex.boxes:
            x0, y0, x1, y1 = b.box
            print(f"{b.kind} {b.label!r}: scene pixels ({x0:.1f}, {y0:.1f}) - ({x1:.1f}, {y1:.1f})", file=sys.stderr)
        if args.geojson:
            from .vlm.boxes import boxes_to_feature_collection

            _write_text(args.geojson, json.dumps(boxes_to_feature_collection(
                [(b.box, b.label, b.convention) for b in ex.boxes], session.scene), indent=2))
        if args.transcript:
            conv.save(args.transcript)
    finally:
        session.close()
        backend.unload()
    return 0


def cmd_models(args) -> int:
    from .vlm.models import check_registry

    rows = check_registry(args.registry)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    elif not rows:
        print("no models registered: see models/README.md")
    else:
        for r in rows:
            print(r.describe())
    return 0 if all(r.ok for r in rows) else 1


def _parse_region(text: str):
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise SarlangError(f"--region wants X,Y,W,H in scene pixels, got {text!r}") from None
    return x, y, w, h


def _write_text(path: str, text: str) -> None:
    from .atomic import write_text_atomic

    write_text_atomic(path, text)


COMMANDS = {"bench": cmd_bench, "dataset": cmd_dataset, "info": cmd_info, "preprocess": cmd_preprocess, "ask": cmd_ask, "caption": cmd_ask, "models": cmd_models}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except SarlangError as exc:
        if args.debug:
            raise
        print(f"sarlang-cli: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sarlang-cli: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # output piped into `head` and the like: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # an unexpected failure still gets one line unless --debug
        if args.debug:
            raise
        print(f"sarlang-cli: error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
