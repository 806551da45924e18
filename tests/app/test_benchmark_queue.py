"""The benchmark window's run queue, offscreen with real `sarlang-cli bench` processes: entries run in
order and are selected, a failed entry is marked and the queue goes on, Stop pauses and Resume
finishes, closing during a queue stops the run and starts no other."""

import json

from bench_helpers import RUN_TIMEOUT, bench_dataset, cell, fill_form, queue_cells, rows_loaded
from gui_helpers import screenshot


def queue_to_end(qtbot, win, start=None):
    """Start (or resume) the queue, wait for "Queue done"; (finished run folders, text, folders started)."""
    started = []

    def record(run_dir):
        started.append(run_dir)
    win.process.started.connect(record)
    with qtbot.waitSignal(win.queue.queueFinished, timeout=3 * RUN_TIMEOUT) as blocker:
        (start or win.queue.start_button.click)()
    win.process.started.disconnect(record)
    return blocker.args[0], blocker.args[1], started


def test_a_queue_runs_its_entries_in_order_and_selects_them(qtbot, bench, server, tmp_path):
    src = bench_dataset(tmp_path / "data", 2)
    runs = tmp_path / "runs"
    (runs / "base-pre").mkdir(parents=True)           # a folder of that name is there: never overwritten
    (runs / "base-pre" / "notes.txt").write_text("mine")
    q = bench.queue
    fill_form(bench, server, src, "base", judge=False)
    bench.form.dataset.setText("")                    # the form says what is missing; nothing is queued
    bench.add_queue_button.click()
    assert not q.entries and "Cannot add to the queue" in bench.message_label.text()
    assert "dataset needs a source" in bench.message_label.text()
    bench.form.dataset.setText(str(src))
    q.variants_button.click()                         # base-raw (as stored) and base-pre (paper's chain)
    bench.form.name.setText("extra")
    bench.add_queue_button.click()
    assert [e.config.name for e in q.entries] == ["base-raw", "base-pre", "extra"]
    assert queue_cells(bench, 2) == ["✗", "✓", "✗"] and queue_cells(bench, 3) == ["vqa"] * 3
    assert queue_cells(bench, 1)[0].startswith("sar-vlm @ 127.0.0.1:")
    assert queue_cells(bench, 4) == ["queued"] * 3 and q.start_button.isEnabled()
    assert q.selected_row() == 2
    q.remove_button.click()
    q.table.selectRow(1)
    q.up_button.click()                               # the preprocessed one first
    assert [e.config.name for e in q.entries] == ["base-pre", "base-raw"] and q.selected_row() == 0

    dirs, text, started = queue_to_end(qtbot, bench)
    assert started == [str(runs / "base-pre-2"), str(runs / "base-raw")]        # in order, one at a time
    assert dirs == started and text == "Queue done: 2 runs, 0 failed", bench.last_error
    assert [e.state for e in q.entries] == ["done", "done"] and queue_cells(bench, 4) == ["✓ done"] * 2
    assert q.entries[0].config.name == "base-pre-2"
    assert (runs / "base-pre" / "notes.txt").read_text() == "mine"
    assert "Queue done: 2 runs, 0 failed" in bench.message_label.text()
    rows_loaded(qtbot, bench, 2)
    qtbot.waitUntil(lambda: sorted(bench.runs.selected_runs()) == sorted(dirs), timeout=10000)
    pre = {cell(bench, r, "Name"): cell(bench, r, "Pre") for r in range(2)}
    assert pre == {"base-pre-2": "✓", "base-raw": "✗"}
    assert len(bench.charts.per_metric.values) == 2       # charted together
    assert bench.start_button.isEnabled() and not bench.stop_button.isEnabled()
    assert not q.start_button.isEnabled()                 # nothing left to run
    q.clear_button.click()
    assert not q.entries


def test_a_failed_queue_entry_is_marked_and_the_queue_goes_on(qtbot, bench, server, tmp_path):
    src = bench_dataset(tmp_path / "data", 2)
    q = bench.queue
    fill_form(bench, server, src, "unreachable", endpoint="http://127.0.0.1:9/v1", judge=False)  # nothing there
    bench.add_queue_button.click()
    bench.form.endpoint.setText(server.url)
    bench.form.name.setText("good")
    bench.add_queue_button.click()
    server.plan = [{"pieces": [a]} for a in ("0", "farmland", "2", "farmland")]     # the good run: 3 of 4 right
    dirs, text, started = queue_to_end(qtbot, bench)
    runs = tmp_path / "runs"
    assert started == [str(runs / "unreachable"), str(runs / "good")]
    assert [e.state for e in q.entries] == ["failed", "done"]
    assert "cannot reach http://127.0.0.1:9/v1" in q.entries[0].detail
    assert queue_cells(bench, 4) == ["⚠ failed", "✓ done"]
    assert "cannot reach" in q.table.item(0, 4).toolTip()
    assert text.startswith("Queue done: 2 runs, 1 failed\n⚠ unreachable: ") and dirs == [str(runs / "good")]
    assert "Queue done: 2 runs, 1 failed" in bench.message_label.text()
    rows_loaded(qtbot, bench, 2)
    qtbot.waitUntil(lambda: bench.runs.selected_runs() == dirs, timeout=10000)
    q.table.selectRow(0)
    assert q.detail.isVisible() and "cannot reach" in q.detail.text()
    qtbot.wait(100)
    screenshot(bench, "benchmark_queue_done")


def test_stop_pauses_the_queue_and_resume_finishes_it(qtbot, bench, server, tmp_path):
    src = bench_dataset(tmp_path / "data", 3)
    runs = tmp_path / "runs"
    q = bench.queue
    for name in ("first", "slow", "last"):
        fill_form(bench, server, src, name, judge=False)
        bench.add_queue_button.click()

    def pace(run_dir):      # the "slow" run's model takes its time; the others answer at once
        server.plan = [{"delay": 0.4, "pieces": ["1"]}] * 40 if run_dir.endswith("slow") else []
    bench.process.started.connect(pace)
    stopped = []

    def stop_in_slow(e):
        if bench.process.run_dir.endswith("slow") and e["stage"] == "generate" and e["done"] >= 2 and not stopped:
            stopped.append(e["done"])
            screenshot(bench, "benchmark_queue")      # first done, slow running with its progress, last waiting
            bench.stop_button.click()
    bench.process.progress.connect(stop_in_slow)
    with qtbot.waitSignal(bench.runFinished, timeout=RUN_TIMEOUT,
                          check_params_cb=lambda kind, ev: kind == "cancelled") as blocker:
        q.start_button.click()
    assert blocker.args[1]["run_dir"] == str(runs / "slow")
    assert [e.state for e in q.entries] == ["done", "stopped", "queued"]
    assert q.paused and not bench.process.running
    assert "Queue paused at slow" in bench.message_label.text()
    assert bench.resume_button.text() == "⟳ Resume queue" and bench.resume_button.isEnabled()
    assert q.start_button.text() == "⟳ Resume queue"
    rows_loaded(qtbot, bench, 2)
    assert {cell(bench, r, "Name"): cell(bench, r, "Status") for r in range(2)}["slow"].startswith("partial")

    bench.process.progress.disconnect(stop_in_slow)
    dirs, text, started = queue_to_end(qtbot, bench, bench.resume_button.click)
    assert started == [str(runs / "slow"), str(runs / "last")]        # the stopped run first, then the rest
    assert text == "Queue done: 3 runs, 0 failed", bench.last_error
    assert dirs == [str(runs / n) for n in ("first", "slow", "last")]
    assert [e.state for e in q.entries] == ["done"] * 3 and not q.paused
    lines = (runs / "slow" / "predictions.jsonl").read_text().splitlines()
    assert sorted(json.loads(ln)["id"] for ln in lines) == sorted(f"q{i}" for i in range(6))
    assert not (runs / "slow-2").exists()
    rows_loaded(qtbot, bench, 3)
    qtbot.waitUntil(lambda: sorted(bench.runs.selected_runs()) == sorted(dirs), timeout=10000)
    assert bench.resume_button.text() == "⟳ Resume"


def test_closing_during_a_queue_asks_stops_the_run_and_starts_no_other(qtbot, bench, server, tmp_path):
    src = bench_dataset(tmp_path / "data", 5)
    server.plan = [{"delay": 0.4, "pieces": ["1"]}] * 40
    for name in ("one", "two"):
        fill_form(bench, server, src, name, judge=False)
        bench.add_queue_button.click()
    asked = []
    bench.confirm_stop = lambda: asked.append(bench.queue.close_note()) or True
    with qtbot.waitSignal(bench.process.progress, timeout=RUN_TIMEOUT,
                          check_params_cb=lambda e: e["stage"] == "generate" and e["done"] >= 1):
        bench.queue.start_button.click()
    with qtbot.waitSignal(bench.runFinished, timeout=RUN_TIMEOUT) as blocker:
        bench.close()
    assert blocker.args[0] == "cancelled" and asked == [" The queue pauses (1 more run waiting)."]
    qtbot.waitUntil(lambda: not bench.isVisible(), timeout=5000)
    assert not bench.process.running and bench.queue.paused
    assert [e.state for e in bench.queue.entries] == ["stopped", "queued"]
    assert not (tmp_path / "runs" / "two").exists()
