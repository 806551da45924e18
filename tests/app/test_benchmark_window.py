"""The benchmark window end to end, offscreen: real `sarlang-cli bench` processes (QProcess)
against the local chat-completions server on 127.0.0.1: progress, results, samples, stop and
resume, a bad endpoint, comparing runs, closing during a run."""

import json

import numpy as np
import pytest
from bench_helpers import RUN_TIMEOUT, bench_dataset, cell, fill_form, queue_cells, rows_loaded, run_to_end
from gui_helpers import screenshot
from PIL import Image

from sarlang_core.evaluate.run_config import (
    BackendSpec,
    DatasetSpec,
    JudgeSpec,
    RunConfig,
)
from sarlang_core.evaluate.runner import BenchmarkRun


def test_a_run_streams_progress_then_shows_results_and_samples(qtbot, bench, server, tmp_path):
    src = bench_dataset(tmp_path / "data", 4)
    # model answers (concurrency 1, in order): right, right, wrong count, odd land cover, ...
    answers = ["0", "farmland", "2", "open water", "2", "Farmland.", "0", "forest"]
    server.plan = [{"pieces": [a]} for a in answers] + [{"pieces": ["0"]}] * 4   # then the judge says "wrong"
    fill_form(bench, server, src, "sar-vlm-raw")
    kind, ev, events = run_to_end(qtbot, bench)
    assert kind == "done" and ev["state"] == "complete", bench.last_error
    gen = [e for e in events if e["stage"] == "generate" and e["done"]]
    assert gen and gen[-1]["done"] == 8 and gen[-1]["eta_s"] == 0.0
    assert {"generate", "report"} <= {e["stage"] for e in events}
    assert "Run finished" in bench.message_label.text() and "accuracy" in bench.message_label.text()
    assert bench.start_button.isEnabled() and bench.form.isEnabled()

    rows_loaded(qtbot, bench, 1)
    assert cell(bench, 0, "Name") == "sar-vlm-raw" and cell(bench, 0, "Status") == "complete"
    assert cell(bench, 0, "Model") == "SAR-VLM" and cell(bench, 0, "Pre") == "✗"
    acc = float(cell(bench, 0, "Accuracy"))
    assert 0 < acc < 100 and cell(bench, 0, "Counting") != "–"
    assert bench.runs.selected_runs() == [ev["run_dir"]]            # the finished run is selected

    # charts of the selected run
    qtbot.waitUntil(lambda: bool(bench.charts.per_app.values), timeout=5000)
    _name, values = bench.charts.per_metric.values[0]
    assert values[0] == pytest.approx(acc / 100, abs=1e-4)

    # per-sample browser: predictions, verdicts, filters, the image
    browser = bench.samples
    bench.tabs.setCurrentWidget(browser)
    qtbot.waitUntil(lambda: browser.model.rowCount() == 8, timeout=10000)
    kinds = [r["_kind"] for r in browser.model.rows]
    assert kinds.count("correct") >= 2 and kinds.count("wrong") >= 1
    browser.verdict_filter.setCurrentIndex(browser.verdict_filter.findData("wrong"))
    assert browser.model.rowCount() == kinds.count("wrong")
    wrong = browser.model.row_at(0)
    assert "Prediction" in browser.text.toPlainText() and wrong["prediction"] in browser.text.toPlainText()
    assert "wrong" in browser.text.toPlainText()
    browser.verdict_filter.setCurrentIndex(0)
    browser.search.setText("land cover")
    assert browser.model.rowCount() == 4
    with qtbot.waitSignal(browser.imageShown, timeout=10000):
        browser.table.selectRow(1)
    assert browser.image.pixmap() is not None and not browser.image.pixmap().isNull()
    assert "Judge" in browser.text.toPlainText() or "rule" in browser.text.toPlainText()
    screenshot(bench, "benchmark_samples")
    bench.tabs.setCurrentWidget(bench.charts)
    qtbot.wait(100)
    screenshot(bench, "benchmark_run_done")


def test_stop_mid_run_then_resume_completes_it(qtbot, bench, server, tmp_path):
    src = bench_dataset(tmp_path / "data", 5)
    server.plan = [{"delay": 0.4, "pieces": ["1"]}] * 40
    fill_form(bench, server, src, "slow", judge=False)
    stopped = []

    def stop_when_two_done(e):
        if e["stage"] == "generate" and e["done"] >= 2 and not stopped:
            stopped.append(e["done"])
            bench.stop_button.click()
    bench.process.progress.connect(stop_when_two_done)
    kind, ev, _ = run_to_end(qtbot, bench)
    assert kind == "cancelled", bench.last_error
    assert "Resume" in bench.message_label.text()
    rows_loaded(qtbot, bench, 1)
    assert cell(bench, 0, "Status").startswith("partial")
    done_before = int(cell(bench, 0, "Predicted").split("/")[0])
    assert 2 <= done_before < 10
    assert bench.resume_button.isEnabled()
    screenshot(bench, "benchmark_stopped")

    bench.process.progress.disconnect(stop_when_two_done)
    server.plan = []
    kind, ev, events = run_to_end(qtbot, bench, bench.resume_button.click)
    assert kind == "done" and ev["state"] == "complete" and ev["done"] == 10, bench.last_error
    assert events[0]["done"] >= done_before          # resumed where it stopped
    lines = (tmp_path / "runs" / "slow" / "predictions.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(f"q{i}" for i in range(10))
    rows_loaded(qtbot, bench, 1)
    qtbot.waitUntil(lambda: cell(bench, 0, "Status") == "complete", timeout=10000)


def test_a_bad_endpoint_shows_the_error_and_the_window_stays_usable(qtbot, bench, server, tmp_path):
    src = bench_dataset(tmp_path / "data", 2)
    # the form says what is missing before any process starts
    fill_form(bench, server, src, "bad")
    bench.form.dataset.setText("")
    assert bench.start() is None and "dataset needs a source" in bench.message_label.text()
    bench.form.dataset.setText(str(src))
    bench.form.endpoint.setText("http://127.0.0.1:9/v1")            # nothing listens there
    kind, _ev, _ = run_to_end(qtbot, bench)
    assert kind == "error"
    text = bench.message_label.text()
    assert "Run failed" in text and "cannot reach http://127.0.0.1:9/v1" in text and "Fix the form" in text
    assert bench.start_button.isEnabled() and bench.form.isEnabled() and not bench.stop_button.isEnabled()
    rows_loaded(qtbot, bench, 1)
    assert cell(bench, 0, "Status").startswith("failed")
    screenshot(bench, "benchmark_error")
    # a good run still goes after that
    bench.form.endpoint.setText(server.url)
    bench.form.name.setText("good")
    kind, _ev, _ = run_to_end(qtbot, bench)
    assert kind == "done", bench.last_error


def _make_run(runs, ep, src, name, answers, pipeline=None):
    ep.plan = [{"pieces": [a]} for a in answers]
    cfg = RunConfig(name=name, task="vqa", pipeline=pipeline,
                    backend=BackendSpec(kind="openai", model="sar-vlm", endpoint=ep.url, label=name.upper(),
                                        param="3B"),
                    dataset=DatasetSpec(source=str(src)), judge=JudgeSpec(endpoint=ep.url), concurrency=1)
    run = BenchmarkRun.create(runs / name, cfg)
    run.execute()
    return run.dir


def test_compare_two_runs_shows_deltas_and_charts(qtbot, bench, server, tmp_path):
    from sarlang_core.preprocess.pipeline import Pipeline

    src = bench_dataset(tmp_path / "data", 3)
    runs = tmp_path / "runs"
    a = _make_run(runs, server, src, "base", ["0", "water", "5", "farmland", "2", "water"])
    b = _make_run(runs, server, src, "lora", ["0", "farmland", "1", "farmland", "2", "water", "0"],
                  pipeline=Pipeline().to_dict())
    with qtbot.waitSignal(bench.runsLoaded, timeout=10000):
        bench.refresh()
    assert bench.runs.table.rowCount() == 2
    bench.runs.select_runs([str(a), str(b)])
    assert bench.compare_button.isEnabled()
    bench.compare_button.click()
    qtbot.waitUntil(lambda: bench.comparison.table is not None, timeout=10000)
    t = bench.comparison.table
    assert "Pre" in t.header and t.rows[2][0] == "Δ vs BASE"
    acc = t.header.index("Accuracy")
    assert float(t.rows[2][acc]) > 0
    grid = bench.comparison.grid
    assert grid.rowCount() == 3 and grid.item(2, acc).text().startswith("+")
    assert [n for n, _ in bench.charts.per_app.values] == ["base · BASE", "lora · LORA"]
    screenshot(bench, "benchmark_compare")
    bench.tabs.setCurrentWidget(bench.charts)
    qtbot.wait(100)
    screenshot(bench, "benchmark_charts_two_runs")
    # sorting by accuracy puts the better run first when descending
    from PySide6.QtCore import Qt
    bench.runs.sortByColumn(bench.runs.columns.index("Accuracy"), Qt.SortOrder.DescendingOrder)
    assert bench.runs.table.item(0, 0).text() == "lora"


def test_closing_during_a_run_asks_then_stops_it_cleanly(qtbot, bench, server, tmp_path):
    src = bench_dataset(tmp_path / "data", 5)
    server.plan = [{"delay": 0.4, "pieces": ["1"]}] * 40
    fill_form(bench, server, src, "closing", judge=False)
    asked = []
    bench.confirm_stop = lambda: asked.append(1) or True
    with qtbot.waitSignal(bench.process.progress, timeout=RUN_TIMEOUT,
                          check_params_cb=lambda e: e["stage"] == "generate" and e["done"] >= 1):
        bench.start()
    with qtbot.waitSignal(bench.runFinished, timeout=RUN_TIMEOUT) as blocker:
        bench.close()
        assert bench.isVisible()            # still open until the process has gone
    assert asked == [1] and blocker.args[0] == "cancelled"
    qtbot.waitUntil(lambda: not bench.isVisible(), timeout=5000)
    state = json.loads((tmp_path / "runs" / "closing" / "outcome.json").read_text())["state"]
    assert state == "cancelled"


def test_tools_menu_opens_the_benchmark_window(qtbot, window, tmp_path):
    from app.benchmarks.window import BenchmarkWindow
    from app.settings import settings

    settings().setValue("benchmarks/runs_folder", str(tmp_path / "remembered"))
    assert window.act_benchmarks.text().replace("&", "") == "Benchmarks…"
    window.act_benchmarks.trigger()
    win = window.benchmark_window
    assert isinstance(win, BenchmarkWindow) and win.isVisible()
    assert win.runs_folder == str(tmp_path / "remembered")
    form = win.form
    assert form.preprocess.currentData() == "current" and form.preprocess.model().item(0).isEnabled()
    assert form._pipeline() == window.pipeline_panel.pipeline().to_dict()
    window.act_benchmarks.trigger()
    assert window.benchmark_window is win            # one window, raised again
    win.close()


def _caption_store(folder, n=3):
    from sarlang_core.datasets.records import ImageRecord, Item
    from sarlang_core.datasets.store import Store

    folder.mkdir(parents=True, exist_ok=True)
    with Store.open(folder / "captions.db", create=True) as store:
        recs = []
        for i in range(n):
            pixels = (np.random.default_rng(i).random((48, 64)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"im{i}.png")
            recs.append(ImageRecord(f"im{i}.png", f"im{i}.png", 64, 48, split="test"))
        store.add_images(recs)
        store.add_items([it for i in range(n) for it in (
            Item(f"im{i}.png", "caption_concise", "Describe.", f"a harbour with {i} ships", "imported"),
            Item(f"im{i}.png", "caption_detailed", "Describe in detail.",
                 f"a harbour with {i} ships moored along a long pier beside farmland", "imported"))])
    return folder / "captions.db"


def test_caption_runs_chart_every_metric_and_each_caption_kind(qtbot, bench, server, tmp_path):
    db = _caption_store(tmp_path / "data")
    runs = tmp_path / "runs"
    for name, answers in (("cap-base", ["a ship at sea"] * 6),
                          ("cap-lora", ["a harbour with 0 ships", "a harbour with 0 ships moored along a pier",
                                        "a harbour with 1 ships", "a harbour with ships along a long pier",
                                        "a harbour with 2 ships", "ships moored beside farmland"])):
        server.plan = [{"pieces": [a]} for a in answers]
        cfg = RunConfig(name=name, task="caption", concurrency=1, dataset=DatasetSpec(source=str(db)),
                        backend=BackendSpec(kind="openai", model="sar-vlm", endpoint=server.url, label=name))
        BenchmarkRun.create(runs / name, cfg).execute()
    with qtbot.waitSignal(bench.runsLoaded, timeout=10000):
        bench.refresh()
    assert "CIDEr" in bench.runs.columns and "Accuracy" not in bench.runs.columns
    bench.runs.select_runs([str(runs / "cap-base"), str(runs / "cap-lora")])
    charts = bench.charts
    assert [n for n, _ in charts.per_metric.values] == ["cap-base", "cap-lora"]
    base, lora = (v for _, v in charts.per_metric.values)
    assert lora[0] > base[0]                                   # BLEU_1
    assert charts.metric_box.isVisible() and "CIDEr" in charts.per_app.getPlotItem().titleLabel.text
    charts.metric_box.setCurrentIndex(charts.metric_box.findData("Bleu_1"))
    assert "BLEU_1" in charts.per_app.getPlotItem().titleLabel.text and len(charts.per_app.values[0][1]) == 2
    qtbot.wait(100)
    screenshot(bench, "benchmark_caption_charts")
    bench.compare_button.click()
    qtbot.waitUntil(lambda: bench.comparison.table is not None, timeout=10000)
    assert bench.comparison.table.header[0] == "Caption"


def test_the_form_builds_the_run_config_a_person_described(bench, tmp_path):
    from sarlang_core.preprocess.pipeline import Pipeline

    f = bench.form
    f.name.setText("Qwen 3B / LoRA")
    f.task.setCurrentIndex(f.task.findData("caption"))
    assert set(f.type_checks) == {"caption_concise", "caption_detailed"} and not f._judge_group.isEnabled()
    f.model.setCurrentIndex(f.model.findData("folder"))
    f.model_folder.setText(str(tmp_path / "qwen"))
    f.adapter.setText(str(tmp_path / "lora"))
    f.dataset.setText(str(tmp_path / "p.db"))
    f.split.setCurrentIndex(f.split.findData("all"))
    f.type_checks["caption_detailed"].setChecked(False)
    f.limit.setValue(50)
    f.preprocess.setCurrentIndex(f.preprocess.findData("paper"))
    assert f.batch_size.text() == "Auto (from free GPU memory)" and f.config().batch_size == "auto"
    f.batch_size.setValue(8)
    f.max_tokens.setValue(64)
    cfg = f.config()
    assert cfg.task == "caption" and cfg.backend.kind == "local" and cfg.backend.fine_tuned
    assert cfg.backend.model == str(tmp_path / "qwen") and cfg.backend.adapter == str(tmp_path / "lora")
    assert (cfg.dataset.split, cfg.dataset.types, cfg.dataset.limit) == ("all", ("caption_concise",), 50)
    assert cfg.pipeline == Pipeline().to_dict() and cfg.batch_size == 8 and cfg.generation.max_new_tokens == 64
    assert f.folder_name() == "Qwen-3B-LoRA"
    f.type_checks["caption_concise"].setChecked(False)
    with pytest.raises(Exception, match="at least one item type"):
        f.config()


# -- the run queue ------------------------------------------------------------------------------------
@pytest.fixture
def tiny_model_and_adapter(tiny_qwen, tiny_lora):
    """The session's tiny Qwen2.5-VL and a LoRA adapter for it (tests/support/tiny_models.py)."""
    return tiny_qwen, tiny_lora


def test_a_local_model_with_an_adapter_runs_through_the_paper_chain(qtbot, bench, tmp_path, tiny_model_and_adapter):
    """The local path end to end: model folder + LoRA adapter, images through the paper's chain,
    the offline judge; the run is reported as a LoRA fine-tune with preprocessing."""
    base, adapter = tiny_model_and_adapter
    src = bench_dataset(tmp_path / "data", 2)
    f = bench.form
    f.name.setText("tiny-lora")
    f.task.setCurrentIndex(f.task.findData("vqa"))
    f.model.setCurrentIndex(f.model.findData("folder"))
    f.model_folder.setText(str(base))
    f.adapter.setText(str(adapter))
    f.dataset.setText(str(src))
    f.preprocess.setCurrentIndex(f.preprocess.findData("paper"))
    f.judge.setCurrentIndex(f.judge.findData("offline"))
    f.max_tokens.setValue(6)
    kind, ev, _events = run_to_end(qtbot, bench)
    assert kind == "done" and ev["state"] == "complete", bench.last_error
    rows_loaded(qtbot, bench, 1)
    assert cell(bench, 0, "Train strategy") == "LoRA Finetune" and cell(bench, 0, "Pre") == "✓"
    pred_file = tmp_path / "runs" / "tiny-lora" / "predictions.jsonl"
    preds = [json.loads(line) for line in pred_file.read_text().splitlines()]
    assert len(preds) == 4 and all(isinstance(p.get("prediction"), str) for p in preds)


def test_a_folder_that_is_not_a_model_fails_with_a_clear_error(qtbot, bench, tmp_path):
    src = bench_dataset(tmp_path / "data", 1)
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    (not_a_model / "notes.txt").write_text("weights go here")
    f = bench.form
    f.name.setText("broken")
    f.model.setCurrentIndex(f.model.findData("folder"))
    f.model_folder.setText(str(not_a_model))
    f.dataset.setText(str(src))
    f.judge.setCurrentIndex(f.judge.findData("offline"))
    kind, _ev, _events = run_to_end(qtbot, bench)
    assert kind == "error"
    assert "config.json" in bench.last_error or "not a model" in bench.last_error.lower(), bench.last_error
    assert bench.start_button.isEnabled()


def test_a_key_in_the_endpoint_url_is_never_shown_or_remembered(qtbot, bench, server, tmp_path):
    from app.settings import settings
    from sarlang_core.services.benchmarks import run_command

    src = bench_dataset(tmp_path / "data", 1)
    url = server.url.replace("http://", "http://user:sk-guisecret@") + "?api_key=qs-guisecret"
    fill_form(bench, server, src, "keyed", endpoint=url, judge=False)
    bench.add_queue_button.click()
    entry = bench.queue.entries[0]
    shown = queue_cells(bench, 1)[0] + entry.tooltip()
    assert "guisecret" not in shown and shown.startswith("sar-vlm @ 127.0.0.1:")
    bench.form.remember()
    assert settings().value("benchmarks/form/endpoint") == server.url
    # the run process alone gets the key, or it could not connect: in its environment, which only
    # this user can read, never on its command line, which every local user can (ps)
    launch = run_command(entry.config, tmp_path / "r")
    assert "guisecret" not in " ".join(launch.args)
    assert "sk-guisecret" in launch.env[launch.args[launch.args.index("--config-env") + 1]]
