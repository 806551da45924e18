"""The per-sample table of a benchmark run (VQA or captions) and the detail text of one sample.

VQA rows carry a verdict; caption rows carry their own BLEU-1..4, ROUGE_L and CIDEr (from the run's
caption_scores.jsonl), shown ×100 as in the report tables and sorted as numbers, unscored rows last.
"""

from __future__ import annotations

import html
from typing import List, Optional, Tuple

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QColor

COLUMNS = ("ID", "Verdict", "Type", "Question", "Ground truth", "Prediction", "Application")
VQA_WIDTHS = (56, 96, 96, 230, 110, 190, 130)
# caption runs: header -> key in a row's "scores" (the report's spelling of the metric names)
SCORE_COLUMNS = {"BLEU_1": "Bleu_1", "BLEU_4": "Bleu_4", "ROUGE_L": "ROUGE_L", "CIDEr": "CIDEr"}
CAPTION_COLUMNS = ("ID", "Type", *SCORE_COLUMNS, "Prediction", "Ground truth")
CAPTION_WIDTHS = (140, 124, 64, 64, 70, 68, 300, 300)
ALL_SCORES = (("BLEU_1", "Bleu_1"), ("BLEU_2", "Bleu_2"), ("BLEU_3", "Bleu_3"), ("BLEU_4", "Bleu_4"),
              ("ROUGE_L", "ROUGE_L"), ("CIDEr", "CIDEr"))
SCORE_TIP = ("This sample's {name} ×100, as in the report tables (BLEU per sentence with its own brevity "
             "penalty; CIDEr's document frequencies from the whole run). Click to sort.")
VERDICT_STYLE = {"correct": ("✓ correct", "#5cc08a"), "wrong": ("✗ wrong", "#e06c75"),
                 "undecided": ("? undecided", "#f0a050"), "error": ("⚠ error", "#e06c75"),
                 "pending": ("· pending", "#7d8590"), "predicted": ("predicted", "#9aa3ad")}
MUTED = "#7d8590"


def verdict_kind(row: dict) -> str:
    if row.get("prediction") is None:
        return "error" if row.get("error") else "pending"
    v = row.get("verdict")
    if v is None:
        return "predicted"      # captions: no verdict, scores instead
    return "undecided" if v.get("correct") is None else "correct" if v["correct"] else "wrong"


def fmt_score(value: Optional[float], digits: int = 2) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}"


def score_of(row: dict, key: str) -> Optional[float]:
    scores = row.get("scores")
    return scores.get(key) if scores else None


class SampleTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: List[dict] = []
        self.shown: List[int] = []
        self.columns: Tuple[str, ...] = COLUMNS

    def set_task(self, task: str) -> bool:
        """Columns for a "vqa" or "caption" run; True when they changed."""
        columns = CAPTION_COLUMNS if task == "caption" else COLUMNS
        if columns == self.columns:
            return False
        self.beginResetModel()
        self.columns, self.rows, self.shown = columns, [], []
        self.endResetModel()
        return True

    def set_rows(self, rows: List[dict], shown: List[int]) -> None:
        self.beginResetModel()
        self.rows, self.shown = rows, shown
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.shown)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal:
            return None
        name = self.columns[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return name
        if role == Qt.ItemDataRole.ToolTipRole and name in SCORE_COLUMNS:
            return SCORE_TIP.format(name=name)
        return None

    def column_of(self, name: str) -> int:
        return self.columns.index(name) if name in self.columns else -1

    def cell(self, row: dict, col: int) -> str:
        name = self.columns[col]
        if name in SCORE_COLUMNS:
            return fmt_score(score_of(row, SCORE_COLUMNS[name]))
        if name == "ID":
            return row["id"]
        if name == "Verdict":
            return VERDICT_STYLE[row["_kind"]][0]
        if name == "Type":
            return row.get("type") or ""
        if name == "Question":
            return row.get("question") or ""
        if name == "Ground truth":
            return " | ".join(row.get("references") or [])
        if name == "Prediction":
            p = row.get("prediction")
            return (p if p is not None else (row.get("error") or "")).replace("\n", " ")
        return row["_app"]

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, name = self.rows[self.shown[index.row()]], self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            text = self.cell(row, index.column())
            return text if len(text) < 200 else text[:199] + "…"
        if role == Qt.ItemDataRole.ToolTipRole and name in ("Question", "Ground truth", "Prediction"):
            return self.cell(row, index.column())
        if name in SCORE_COLUMNS:
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if role == Qt.ItemDataRole.ForegroundRole and score_of(row, SCORE_COLUMNS[name]) is None:
                return QColor(MUTED)
            return None
        if role == Qt.ItemDataRole.ForegroundRole and (name == "Verdict" or
                                                       (name == "Prediction" and row["_kind"] == "error")):
            return QColor(VERDICT_STYLE[row["_kind"]][1])
        return None

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self.columns):
            return
        self.layoutAboutToBeChanged.emit()
        self.shown = self.sorted_rows(self.shown, column, order == Qt.SortOrder.DescendingOrder)
        self.layoutChanged.emit()

    def sorted_rows(self, shown: List[int], column: int, descending: bool) -> List[int]:
        name = self.columns[column]
        if name not in SCORE_COLUMNS:
            return sorted(shown, key=lambda i: self.cell(self.rows[i], column).lower(), reverse=descending)
        key = SCORE_COLUMNS[name]
        scored = [i for i in shown if score_of(self.rows[i], key) is not None]
        unscored = [i for i in shown if score_of(self.rows[i], key) is None]     # last either way
        return sorted(scored, key=lambda i: score_of(self.rows[i], key), reverse=descending) + unscored

    def row_at(self, r: int) -> Optional[dict]:
        return self.rows[self.shown[r]] if 0 <= r < len(self.shown) else None


def sample_html(row: dict, task: str = "vqa") -> str:
    def e(text) -> str:
        return html.escape(str(text)).replace("\n", "<br>")

    label, colour = VERDICT_STYLE[row["_kind"]]
    refs = row.get("references") or []
    head = "Reference" + ("s" if len(refs) > 1 else "") if task == "caption" else "Ground truth"
    parts = [f'<p style="color:{MUTED}">{e(row["id"])} · {e(row.get("type") or "")} · {e(row["_app"])}</p>']
    if task != "caption":
        parts.append(f'<p><b style="color:#8fb8e6">Question</b><br>{e(row.get("question") or "")}</p>')
    if task == "caption" and row.get("prediction") is not None:
        parts.append(_scores_html(row.get("scores")))
    parts.append(f'<p><b style="color:#8fb8e6">{head}</b><br>{"<br>".join(e(r) for r in refs) or "–"}</p>')
    if row.get("prediction") is not None:
        parts.append(f'<p><b style="color:#8fb8e6">Prediction</b><br>{e(row["prediction"])}</p>')
    if row.get("error"):
        parts.append(f'<p><b style="color:#e06c75">Model call failed</b><br>{e(row["error"])}<br>'
                     f'<span style="color:{MUTED}">Resume the run to retry it.</span></p>')
    v = row.get("verdict")
    if v is not None or row["_kind"] != "predicted":
        how = f' <span style="color:{MUTED}">(by {e(v.get("how"))})</span>' if v and v.get("how") else ""
        what = "Status" if task == "caption" else "Verdict"
        parts.append(f'<p><b style="color:#8fb8e6">{what}</b><br><b style="color:{colour}">{e(label)}</b>{how}</p>')
    if v and v.get("reply"):
        parts.append(f'<p><b style="color:#8fb8e6">Judge reply</b><br>{e(v["reply"])}</p>')
    if v and v.get("error"):
        parts.append(f'<p><b style="color:#f0a050">Judge problem</b><br>{e(v["error"])}</p>')
    return "".join(parts)


def _scores_html(scores: Optional[dict]) -> str:
    if not scores:
        return (f'<p><b style="color:#8fb8e6">Scores</b><br><span style="color:{MUTED}">not scored yet: '
                'Resume the run (or <code>sarlang-cli bench report</code>) to score it.</span></p>')
    rows = []
    for pair in zip(ALL_SCORES[0::2], ALL_SCORES[1::2]):     # BLEU_1 | BLEU_2, BLEU_3 | BLEU_4, ROUGE_L | CIDEr
        rows.append("<tr>" + "".join(
            f'<td style="color:{MUTED}; padding:1px 8px 1px 0">{name}</td>'
            f'<td align="right" style="padding:1px 28px 1px 0"><b>{fmt_score(scores.get(key))}</b></td>'
            for name, key in pair) + "</tr>")
    return (f'<p style="margin-bottom:2px"><b style="color:#8fb8e6">Scores</b> '
            f'<span style="color:{MUTED}">(this sample, ×100)</span></p>'
            f'<table cellspacing="0">{"".join(rows)}</table>')
