"""Caption metrics on a SARLANG-1M-Cap-sized test set (13,682 captions), both tokenizations.

    .venv/bin/python bench/bench_caption_metrics.py [--n 13682] [--runs 3]

Synthetic captions: 45 % concise (8-15 words), 55 % detailed (25-60 words), built from SAR
vocabulary; each prediction shares part of its reference's words. Prints, for each tokenization,
the median of ``--runs`` full passes of ``score_captions_detailed`` with our ``fast`` engine and
with the ``reference`` one (pycocoevalcap's Bleu(4), Rouge(), Cider()), in the same process,
and the largest difference between the two over corpus and per-sample scores. ``--engines``
picks a subset; the PTB tokenizer alone is timed too.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine  # noqa: E402
from sarlang_core.evaluate.caption_metrics import CAPTION_KEYS, score_captions_detailed  # noqa: E402
from sarlang_core.evaluate.ptb_tokenizer import ptb_tokenize  # noqa: E402

NOUNS = ["ship", "ships", "harbor", "pier", "aircraft", "runway", "oil tanks", "bridge", "river", "farmland",
         "buildings", "road", "vehicles", "coastline", "dock", "terminal", "reservoir", "dam", "port", "water"]
ADJ = ["bright", "dark", "large", "small", "rectangular", "circular", "long", "narrow", "dense", "scattered"]
PLACES = ["in the top-left corner", "at the center", "near the bottom edge", "along the right side",
          "in the upper part", "across the middle", "to the left of the river", "beside the dock"]
VERBS = ["is located", "are parked", "is moored", "appear", "are visible", "extends", "lies", "runs"]


def sentence(rng: random.Random) -> str:
    s = f"{rng.choice(['A', 'The', 'Several', 'Two', 'Many'])} {rng.choice(ADJ)} {rng.choice(NOUNS)} " \
        f"{rng.choice(VERBS)} {rng.choice(PLACES)}"
    if rng.random() < 0.5:
        s += f", with {rng.choice(ADJ)} {rng.choice(NOUNS)} nearby"
    return s + "."


def caption(rng: random.Random, detailed: bool) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(2, 4) if detailed else 1))


def make_set(n: int, seed: int = 0):
    rng = random.Random(seed)
    preds, refs = [], []
    for _ in range(n):
        detailed = rng.random() < 0.55
        ref = caption(rng, detailed)
        words = ref.split()
        # a prediction: about half of the reference's words kept in order, the rest new
        keep = max(4, int(len(words) * rng.uniform(0.7, 1.2)))
        pred = [w if rng.random() < 0.5 else rng.choice(NOUNS + ADJ) for w in words[:keep]]
        preds.append(" ".join(pred))
        refs.append(ref)
    return preds, refs


def _median_time(fn, runs: int):
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=13_682)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--engines", default="fast,reference", help="comma-separated: fast, reference")
    args = ap.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    print(machine())
    preds, refs = make_set(args.n)
    words = sum(len(p.split()) + len(r.split()) for p, r in zip(preds, refs))
    print(f"{args.n:,} prediction/reference pairs, {words:,} words; median of {args.runs} runs")
    t_ptb, _ = _median_time(lambda: [ptb_tokenize(s) for s in preds + refs], args.runs)
    print(f"PTB tokenizer alone, {2 * args.n:,} strings: {t_ptb:.2f} s")
    for tok in ("whitespace", "ptb"):
        results = {}
        for engine in engines:
            t, scores = _median_time(lambda tok=tok, engine=engine: score_captions_detailed(
                preds, refs, tokenize=tok, engine=engine), args.runs)
            results[engine] = scores
            c = scores.corpus
            print(f"{tok:>10} {engine:>9}: {t:6.2f} s  (BLEU-4 {c['Bleu_4']:.4f}, ROUGE_L {c['ROUGE_L']:.4f}, "
                  f"CIDEr {c['CIDEr']:.4f})")
        if {"fast", "reference"} <= set(results):
            a, b = results["fast"], results["reference"]
            diff = max(max(abs(a.corpus[k] - b.corpus[k]) for k in CAPTION_KEYS),
                       max(abs(x[k] - y[k]) for x, y in zip(a.per_sample, b.per_sample) for k in CAPTION_KEYS))
            print(f"{tok:>10}  max |fast - reference| over corpus and per-sample scores: {diff:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
