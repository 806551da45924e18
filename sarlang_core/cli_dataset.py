"""Printing for `sarlang-cli dataset stats` and `dataset similarity` (the parsers and the
dispatch live in cli.py)."""

from __future__ import annotations

import json


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
    from .cli import _progress_bar

    with _progress_bar(args.quiet or args.json) as progress:
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
