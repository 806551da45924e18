"""The per-sample browser on a caption run, offscreen: a real run (in process, against the local
chat-completions server on 127.0.0.1) scored per sample, shown as sortable score columns, the
worst-by-CIDEr views and the six scores of the selected sample."""

import json
import math

import numpy as np
import pytest
from gui_helpers import screenshot
from PIL import Image
from PySide6.QtCore import Qt

from sarlang_core.datasets.records import ImageRecord, Item
from sarlang_core.datasets.store import Store
from sarlang_core.evaluate.run_config import BackendSpec, DatasetSpec, RunConfig
from sarlang_core.evaluate.runner import BenchmarkRun
from support.chat_server import serve

N = 5
CONCISE = ["a harbour with three ships moored at a pier", "an airport with two long runways",
           "farmland crossed by a winding river", "a bridge over a wide river near a town",
           "a dense forest cut by a straight road"]
DETAILED = ["a busy harbour where three large ships are moored along a concrete pier beside storage tanks",
            "an airport with two long parallel runways, a terminal building and several parked aircraft",
            "a patchwork of rectangular farmland fields crossed by a winding river with trees on its banks",
            "a long bridge spans a wide river, connecting two parts of a small town with dense buildings",
            "a dense forest covers most of the scene, cut by a straight road running from north to south"]
# concurrency 1: answers in sample order (per image: the concise caption, then the detailed one);
# None: that model call fails. CIDEr ×100 of these runs from about 6 to 1000 (a string sort would shuffle them)
ANSWERS = ["a harbour with three ships moored at a pier",
           "a harbour with several ships moored along a pier and some storage tanks",
           "an airport with a runway", "an airport with two runways and a terminal building",
           "farmland and a river", None,
           "a town near the coast", "a river with a bridge and a town",
           "a dense forest cut by a road", "green vegetation covers the scene"]


def _caption_store(folder):
    folder.mkdir(parents=True, exist_ok=True)
    with Store.open(folder / "captions.db", create=True) as store:
        recs = []
        for i in range(N):
            rng = np.random.default_rng(i)
            chip = (rng.gamma(1.0, 1.0, (96, 128)) * np.linspace(20, 90, 128)).clip(0, 255).astype(np.uint8)
            Image.fromarray(chip).save(folder / f"im{i}.png")
            recs.append(ImageRecord(f"im{i}.png", f"im{i}.png", 128, 96, split="test"))
        store.add_images(recs)
        store.add_items([it for i in range(N) for it in (
            Item(f"im{i}.png", "caption_concise", "Describe.", CONCISE[i], "imported"),
            Item(f"im{i}.png", "caption_detailed", "Describe in detail.", DETAILED[i], "imported"))])
    return folder / "captions.db"


@pytest.fixture
def caption_run(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    db = _caption_store(tmp_path / "data")
    with serve() as ep:
        ep.plan = [{"status": 400, "message": "image too large"} if a is None else {"pieces": [a]} for a in ANSWERS]
        cfg = RunConfig(name="cap-base", task="caption", concurrency=1, dataset=DatasetSpec(source=str(db)),
                        backend=BackendSpec(kind="openai", model="sar-vlm", endpoint=ep.url, label="SAR-VLM",
                                            param="3B"))
        run = BenchmarkRun.create(tmp_path / "runs" / "cap-base", cfg)
        status = run.execute()
    assert (status.done, status.failed) == (2 * N - 1, 1)
    return run.dir


def _column(browser, name):
    col = browser.model.column_of(name)
    return [browser.model.index(r, col).data() for r in range(browser.model.rowCount())]


def test_caption_samples_show_sortable_scores_and_the_worst_ones(qtbot, bench, caption_run):
    with qtbot.waitSignal(bench.runsLoaded, timeout=10000):
        bench.refresh()
    bench.runs.select_runs([str(caption_run)])
    browser = bench.samples
    bench.tabs.setCurrentWidget(browser)
    qtbot.waitUntil(lambda: browser.model.rowCount() == 2 * N, timeout=10000)
    assert browser.task == "caption"
    assert {"BLEU_1", "BLEU_4", "ROUGE_L", "CIDEr"} <= set(browser.model.columns)
    assert "Verdict" not in browser.model.columns and "Question" not in browser.model.columns
    scores = {json.loads(line)["id"]: json.loads(line)
              for line in (caption_run / "caption_scores.jsonl").read_text().splitlines()}
    assert len(scores) == 2 * N - 1

    # sorting by CIDEr is numeric, lowest first; the failed sample (no score) goes last either way
    cider = browser.model.column_of("CIDEr")
    browser.table.sortByColumn(cider, Qt.SortOrder.AscendingOrder)
    shown = _column(browser, "CIDEr")
    assert shown[-1] == "–" and browser.model.row_at(2 * N - 1)["error"]
    values = [float(v) for v in shown[:-1]]
    assert values == sorted(values) and values[0] == pytest.approx(min(s["CIDEr"] for s in scores.values()) * 100,
                                                                   abs=0.005)
    assert sorted(shown[:-1]) != shown[:-1]                   # a string sort would have put "1000.00" first
    browser.table.sortByColumn(cider, Qt.SortOrder.DescendingOrder)
    shown = _column(browser, "CIDEr")
    assert [float(v) for v in shown[:-1]] == sorted(values, reverse=True) and shown[-1] == "–"
    assert browser.model.index(0, cider).data(Qt.ItemDataRole.TextAlignmentRole) & int(Qt.AlignmentFlag.AlignRight)

    # "Show: worst 10 % by CIDEr": the lowest one, ranked lowest first
    browser.verdict_filter.setCurrentIndex(browser.verdict_filter.findData("worst10"))
    assert browser.model.rowCount() == math.ceil(0.1 * (2 * N - 1))
    worst_id = min(scores, key=lambda k: scores[k]["CIDEr"])
    assert browser.model.row_at(0)["id"] == worst_id
    assert browser.table.horizontalHeader().sortIndicatorSection() == cider
    assert "CIDEr ≤" in browser.counts.text()
    browser.verdict_filter.setCurrentIndex(browser.verdict_filter.findData("worst25"))
    assert browser.model.rowCount() == math.ceil(0.25 * (2 * N - 1))
    browser.type_filter.setCurrentIndex(browser.type_filter.findText("caption_detailed"))
    assert browser.model.rowCount() == math.ceil(0.25 * (N - 1))           # worst within the chosen kind
    assert all(browser.model.row_at(r)["type"] == "caption_detailed" for r in range(browser.model.rowCount()))
    browser.type_filter.setCurrentIndex(0)
    browser.verdict_filter.setCurrentIndex(browser.verdict_filter.findData("errors"))
    assert browser.model.rowCount() == 1 and "image too large" in browser.text.toPlainText()

    # the detail pane: all six scores, the reference and the prediction
    browser.verdict_filter.setCurrentIndex(0)
    browser.table.sortByColumn(cider, Qt.SortOrder.AscendingOrder)
    with qtbot.waitSignal(browser.imageShown, timeout=10000):
        browser.table.selectRow(1)
    row = browser.model.row_at(1)
    text = browser.text.toPlainText()
    for name, key in (("BLEU_1", "Bleu_1"), ("BLEU_2", "Bleu_2"), ("BLEU_3", "Bleu_3"), ("BLEU_4", "Bleu_4"),
                      ("ROUGE_L", "ROUGE_L"), ("CIDEr", "CIDEr")):
        assert name in text and f"{scores[row['id']][key] * 100:.2f}" in text
    assert "Reference" in text and row["references"][0] in text and row["prediction"] in text
    assert browser.image.pixmap() is not None and not browser.image.pixmap().isNull()
    qtbot.wait(100)
    screenshot(bench, "benchmark_caption_samples")
