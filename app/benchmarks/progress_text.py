"""How a benchmark run's JSON-lines progress reads in the window: stage names, ETA, headline."""

from __future__ import annotations

from typing import Optional

STAGES = {"connect": "Connecting", "load": "Loading model", "generate": "Generating", "rules": "Scoring by rule",
          "judge": "Judging", "score": "Scoring", "done": "Scored", "report": "Writing report"}


def fmt_eta(seconds: Optional[float]) -> str:
    if seconds is None:
        return ""
    s = int(round(seconds))
    return f"ETA {s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"ETA {s // 60}m{s % 60:02d}s"


def headline_text(headline: dict) -> str:
    """{"accuracy": 0.41, "accuracy_decided": 0.5, "undecided": 3} -> 'accuracy 41.00 % · ...'."""
    names = {"accuracy": "accuracy", "accuracy_decided": "over decided answers", "Bleu_1": "BLEU_1",
             "Bleu_4": "BLEU_4", "ROUGE_L": "ROUGE_L", "CIDEr": "CIDEr"}
    parts = [f"{names.get(k, k)} {100 * v:.2f} %" for k, v in headline.items()
             if isinstance(v, float) and k in names]
    if headline.get("undecided"):
        parts.append(f"{headline['undecided']} undecided (no judge verdict: counted wrong)")
    return " · ".join(parts) or "no scores"
