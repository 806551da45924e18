"""`sarlang-cli dataset ...`: import, generate, llm, qc, stats, similarity, split, export.

Every step is one call into ``services.datasets`` or, for the imports, ``services.dataset_steps``
(the GUI's dialogs call the same ones, with the same checks); this module only parses arguments and
prints.
"""

from __future__ import annotations

import json

from .common import ProgressBar, UsageParser


def add_parsers(sub) -> None:
    ds = sub.add_parser("dataset", help="build and curate SAR VQA / caption datasets")
    dsub = ds.add_subparsers(dest="dataset_command", metavar="STEP", parser_class=UsageParser)
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
    ds.set_defaults(handler=cmd_dataset)


def cmd_dataset(args) -> int:
    from ..services import datasets as svc

    step = args.dataset_command
    with ProgressBar(False, unit="item") as progress:
        summary = _dataset_step(svc, step, args, progress) if step not in ("similarity", "stats") else None
    if summary is not None:
        print("\n".join(summary.lines()))
        return 0
    if step == "similarity":
        return similarity(svc, args)
    else:  # stats
        stats = svc.project_stats(args.store, top=args.top, status=args.status)
        answers = stats.pop("answers")
        if args.json:
            print(json.dumps({**stats, "answers": answers}, indent=2))
        else:
            print("\n".join(f"{k}: {v}" for k, v in stats.items()))
            print("\n".join(answer_tables(answers)))
        return 0


def _dataset_step(svc, step: str, args, progress):
    """Run one `dataset` step that ends in a StepSummary, with a progress bar on a terminal."""
    if step.startswith("import-"):
        return _import(step, args, progress)
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


def _import(step: str, args, progress):
    """The import with the checks the GUI's New-project dialog runs (``services.dataset_steps``):
    paths that are missing or of the wrong kind stop it before anything is written."""
    from ..services.dataset_steps import ImportRequest, run_import

    if step == "import-pairs":
        req = ImportRequest(args.store, "pairs", args.sar_dir, args.optical_dir)
    else:
        req = ImportRequest(args.store, "coco" if step == "import-coco" else "sarlang",
                            args.annotations if step == "import-coco" else args.path, args.images)
    outcome = run_import(req, confirmed=True, progress=progress)
    if outcome.removed:
        outcome.summary.problems.append(f"nothing could be imported, so no project was written at {args.store}")
    return outcome.summary


def answer_tables(answers: dict) -> list:
    """Plain-text tables of ``services.datasets.answer_distribution``."""
    out = []
    for t, d in answers.items():
        out.append(f"\nanswers: {t} ({d['total']:,} items, {d['distinct']:,} distinct)")
        if d["kind"] == "length":
            n = d["length"]
            out.append(f"  words: mean {n['mean']:.1f}, median {n['median']:g}, p95 {n['p95']}, "
                       f"min {n['min']}, max {n['max']}")
            out += [f"  {b['lo']:>5}-{b['hi']:<5} {b['count']:>9,}" for b in n["bins"]]
        elif d["kind"] == "numeric":
            out += [f"  {v:>11} {c:>9,}  {c / d['total']:6.1%}" for v, c in d["numeric"]]
            if d["unparsed"]:
                out.append(f"  {'no number':>11} {d['unparsed']:>9,}  {d['unparsed'] / d['total']:6.1%}")
        else:
            out += [f"  {a['count']:>9,}  {a['share']:6.1%}  {a['answer'][:70]}" for a in d["top"]]
            if d["other"]:
                out.append(f"  {d['other']:>9,}  {d['other_share']:6.1%}  (other answers)")
    return out


def similarity(svc, args) -> int:
    with ProgressBar(args.quiet or args.json) as progress:
        result = svc.similarity_stats(args.store, text=None if args.text == "none" else args.text,
                                      image_features=args.image_features, image_model=args.image_model,
                                      status=args.status, progress=progress)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'':6} {'mean':>7} {'variance':>9} {'std':>7} {'pairs':>15}  what")
    for key, label in (("image", "image"), ("text", "text")):
        if key in result:
            r = result[key]
            print(f"{label:6} {r['mean']:7.3f} {r['var']:9.3f} {r['std']:7.3f} {r['pairs']:>15,}  "
                  f"{r['what']}, {r['n']:,} vectors")
    ref = svc.PAPER_SIMILARITY
    print(f"SARLANG-1M (paper, Table 3, SAR): image {ref['image']['mean']:.2f} / {ref['image']['var']:.2f}, "
          f"text {ref['text']['mean']:.2f} / {ref['text']['var']:.2f} (mean / variance; images: VGG16)")
    return 0
