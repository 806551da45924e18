"""The metric and row names the report tables and the charts share (the paper's order)."""

from __future__ import annotations

from collections.abc import Sequence

CAPTION_METRICS = (("Bleu_1", "BLEU_1"), ("Bleu_2", "BLEU_2"), ("Bleu_3", "BLEU_3"), ("Bleu_4", "BLEU_4"),
                   ("ROUGE_L", "ROUGE_L"), ("CIDEr", "CIDEr"))
CAPTION_ROWS = (("caption_detailed", "Complex"), ("caption_concise", "Concise"))
VQA_APPLICATIONS = ("object identification", "object classification", "instance counting", "region referring",
                    "object positioning", "others")


def applications_in(metrics: Sequence[dict]) -> list[str]:
    """The VQA applications scored in any of ``metrics``: the paper's order, then others by name."""
    seen = {a for m in metrics for a in (m.get("vqa") or {}).get("by_application", {})}
    return [a for a in VQA_APPLICATIONS if a in seen] + sorted(seen - set(VQA_APPLICATIONS))
