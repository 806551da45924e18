"""What a run would train on: the first samples formatted with the model's chat template, the
supervised text (the answer the loss is computed on) on a coloured background, and the token
statistics of all samples against the cutoff."""

from __future__ import annotations

import html
from typing import Any, Dict

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

SUPERVISED_BG, SUPERVISED_FG = "#1d4a33", "#b8f0cc"
PROMPT_FG, NOTE_FG, WARN_FG, ERROR_FG = "#c9d1d9", "#9aa3ad", "#e5c07b", "#e06c75"
HEAD_FG = "#8fb8e6"


def stats_html(stats: Dict[str, Any]) -> str:
    """count, mean, p50, p95, max against the cutoff; what goes over it."""
    if not stats:
        return ""
    cells = [("samples", f"{stats.get('count', 0):,}"), ("mean", f"{stats.get('mean', 0):,.0f}"),
             ("p50", f"{stats.get('p50', 0):,}"), ("p95", f"{stats.get('p95', 0):,}"),
             ("max", f"{stats.get('max', 0):,}"), ("cutoff", f"{stats.get('cutoff', 0):,}")]
    text = " &nbsp;·&nbsp; ".join(f'<span style="color:{NOTE_FG}">{k}</span> <b>{v}</b>' for k, v in cells)
    over = stats.get("over_cutoff", 0)
    colour = WARN_FG if over else NOTE_FG
    text += (f' &nbsp;·&nbsp; <span style="color:{colour}">over the cutoff <b>{over:,}</b> '
             f'(truncated {stats.get("truncated", 0):,}, skipped {stats.get("skipped", 0):,})</span>')
    return f'<span style="color:{NOTE_FG}">Tokens per sample:</span> &nbsp;{text}'


def source_html(source: Dict[str, Any], problems) -> str:
    if not source:
        return ""
    types = ", ".join(f"{k} {v:,}" for k, v in sorted((source.get("types") or {}).items(), key=lambda kv: -kv[1]))
    line = (f'<div style="color:{NOTE_FG}">{html.escape(str(source.get("kind", "")))} · '
            f'{html.escape(str(source.get("source", "")))} · {source.get("samples", 0):,} samples on '
            f'{source.get("images", 0):,} images' + (f" · {html.escape(types)}" if types else "") + "</div>")
    if problems:
        items = "".join(f"<li>{html.escape(str(p))}</li>" for p in list(problems)[:8])
        more = f"<li>… {len(problems) - 8} more</li>" if len(problems) > 8 else ""
        line += (f'<div style="color:{WARN_FG}">{len(problems):,} record(s) left out:</div>'
                 f'<ul style="color:{WARN_FG}; margin-top:0">{items}{more}</ul>')
    return line


def sample_html(sample) -> str:
    """One PreviewSample: a header line, then its pieces with the supervised ones highlighted."""
    over = (f' &nbsp;<span style="color:{WARN_FG}">⚠ over the cutoff</span>' if sample.over_cutoff else "")
    head = (f'<div style="color:{HEAD_FG}; margin-top:10px"><b>{html.escape(str(sample.id))}</b>'
            f'<span style="color:{NOTE_FG}"> · {sample.tokens:,} tokens · {sample.supervised_tokens:,} supervised'
            f' · {html.escape(str(sample.image))}</span>{over}</div>')
    body = []
    for text, supervised in sample.pieces:
        t = html.escape(text).replace("\n", "<br>")
        if supervised:
            body.append(f'<span style="background-color:{SUPERVISED_BG}; color:{SUPERVISED_FG}">{t}</span>')
        else:
            body.append(f'<span style="color:{PROMPT_FG}">{t}</span>')
    return head + ('<div style="font-family: monospace; font-size: 9pt; background-color:#14161a; '
                   f'padding:6px">{"".join(body)}</div>')


class DataPreviewView(QWidget):
    """``show_busy(text)``, ``show_preview(DataPreview)``, ``show_error(text)``."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("DataPreviewView")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.summary = QLabel("", objectName="preview_summary")
        self.stats = QLabel("", objectName="preview_stats")
        for label in (self.summary, self.stats):
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            lay.addWidget(label)
        self.text = QTextBrowser(objectName="preview_text")
        self.text.setOpenLinks(False)
        lay.addWidget(self.text, 1)
        self.preview: Any = None
        self.show_message("Press “Preview data” to see the samples as the model will see them: the prompt as "
                          "formatted by its chat template, the supervised answer highlighted, and the token "
                          "lengths against the cutoff.")

    def show_message(self, text: str, colour: str = NOTE_FG) -> None:
        self.summary.setText("")
        self.stats.setText("")
        self.text.setHtml(f'<p style="color:{colour}">{html.escape(text)}</p>')

    def show_busy(self, text: str) -> None:
        self.show_message(text)

    def show_error(self, text: str) -> None:
        self.preview = None
        self.summary.setText(f'<span style="color:{ERROR_FG}">⚠ Cannot preview the data</span>')
        self.stats.setText("")
        self.text.setHtml(f'<p style="color:{ERROR_FG}">{html.escape(text).replace(chr(10), "<br>")}</p>')

    def show_preview(self, preview) -> None:
        self.preview = preview
        self.summary.setText(f"<b>{html.escape(preview.description)}</b>")
        self.stats.setText(stats_html(preview.stats))
        legend = (f'<div style="color:{NOTE_FG}">The first {len(preview.samples)} samples. '
                  f'<span style="background-color:{SUPERVISED_BG}; color:{SUPERVISED_FG}">&nbsp;Highlighted&nbsp;'
                  "</span> text is supervised (the loss is computed on it); the rest is context.</div>")
        self.text.setHtml(source_html(preview.source, preview.problems) + legend
                          + "".join(sample_html(s) for s in preview.samples))

    def supervised_texts(self) -> list:
        """The supervised pieces shown (tests and the status line)."""
        if self.preview is None:
            return []
        return [t for s in self.preview.samples for t, sup in s.pieces if sup]
