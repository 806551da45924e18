"""Bar charts of runs' metrics as PNG (matplotlib, Agg backend: no display, no Qt).

Captions: one chart per metric (BLEU_1 ... CIDEr), caption kinds on the x axis, one bar per run.
VQA: overall accuracy (one bar per run) and accuracy per application (grouped bars).
Values are percentages, as in the report tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from .metric_names import CAPTION_METRICS, CAPTION_ROWS, applications_in

_COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)    # headless, whatever the environment says
    import matplotlib.pyplot as plt

    return plt


def _label(m: dict) -> str:
    r = m.get("run", {})
    name, model = r.get("name") or "?", r.get("model") or ""
    return name if not model or model in name else f"{name} ({model})"


def _grouped(path: Path, title: str, groups: Sequence[str], series: Sequence[Tuple[str, List[Optional[float]]]],
             ylabel: str) -> Path:
    """Grouped bars: ``groups`` on the x axis, one bar per series, value printed on each bar."""
    plt = _pyplot()
    n = max(1, len(series))
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(groups) * max(1, n / 2) + 2), 4.2), dpi=110)
    top = 0.0
    for k, (name, values) in enumerate(series):
        xs = [g + (k - (n - 1) / 2) * width for g in range(len(groups))]
        ys = [0.0 if v is None else 100.0 * v for v in values]
        top = max([top] + ys)
        bars = ax.bar(xs, ys, width * 0.95, label=name, color=_COLOURS[k % len(_COLOURS)])
        for bar, v in zip(bars, values):
            ax.annotate("n/a" if v is None else f"{100.0 * v:.1f}", (bar.get_x() + bar.get_width() / 2,
                        bar.get_height()), ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                        textcoords="offset points")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g.replace(" ", "\n", 1) if len(g) > 12 else g for g in groups], fontsize=9)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, max(1.0, top) * 1.18)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if n > 1:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def write_charts(out_dir: Union[str, Path], metrics: Sequence[dict]) -> List[Path]:
    """PNG charts of one or several runs' metrics into ``out_dir``; returns the files written."""
    out, written = Path(out_dir), []
    caption = [m for m in metrics if m.get("caption")]
    vqa = [m for m in metrics if m.get("vqa")]
    if caption:
        kinds = [(ctype, label) for ctype, label in CAPTION_ROWS
                 if any(ctype in m["caption"].get("by_type", {}) for m in caption)]
        for key, label in CAPTION_METRICS:
            series = [(_label(m), [m["caption"].get("by_type", {}).get(c, {}).get(key) for c, _ in kinds])
                      for m in caption]
            written.append(_grouped(out / f"caption_{label}.png", f"{label} by caption kind",
                                    [lab for _, lab in kinds], series, f"{label} (%)"))
    if vqa:
        written.append(_grouped(out / "vqa_accuracy.png", "VQA accuracy", ["Accuracy"],
                                [(_label(m), [m["vqa"].get("accuracy")]) for m in vqa], "accuracy (%)"))
        apps = applications_in(vqa)
        if apps:
            series = [(_label(m), [m["vqa"].get("by_application", {}).get(a, {}).get("accuracy") for a in apps])
                      for m in vqa]
            written.append(_grouped(out / "vqa_by_application.png", "VQA accuracy per application", apps, series,
                                    "accuracy (%)"))
    return written
