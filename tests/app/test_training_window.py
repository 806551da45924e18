
"""The fine-tuning window, offscreen: the form built from TrainConfig's Params, the data preview of
a tiny Qwen2.5-VL, real `sarlang-cli train` processes (a few optimizer steps on the CPU) with live
curves, a finished run's adapter, stop and resume, bad input; Tools ▸ Fine-tuning in the main window
and a finished adapter queued in the benchmark window."""

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import screenshot, show_styled
from PIL import Image
from PySide6.QtGui import QColor

from sarlang_core.services.training import TrainConfig, config_params

RUN_TIMEOUT = 120000


@pytest.fixture(scope="module")
def tiny_data(tiny_qwen, tmp_path_factory):
    """(the session's tiny model folder, SARLANG-1M style JSON over 8 small chips with one question each)."""
    model = tiny_qwen
    root = tmp_path_factory.mktemp("train")
    (root / "imgs").mkdir()
    recs = []
    for i in range(8):
        chip = np.random.default_rng(i).gamma(1.0, 60.0, (112, 112)).clip(0, 255).astype(np.uint8)
        Image.fromarray(chip).save(root / "imgs" / f"{i}.png")
        recs.append({"messages": [{"role": "user", "content": "<image>How many ships are there in the image?"},
                                  {"role": "assistant", "content": f"{i % 3} ships"}],
                     "images": [f"imgs/{i}.png"]})
    data = root / "data.json"
    data.write_text(json.dumps(recs))
    return str(model), str(data)


@pytest.fixture
def train_win(qtbot, tmp_path, monkeypatch):
    from app import workers
    from app.training.window import TrainingWindow

    monkeypatch.setenv("SARLANG_MODELS", str(tmp_path / "registry.json"))     # none: no registered models

    win = show_styled(qtbot, lambda: TrainingWindow(runs_folder=str(tmp_path / "runs")), (1366, 768))
    yield win
    _kill(win)
    workers.wait_all(5000)


def _kill(win):
    if win.process.running:
        win.process.proc.kill()
        win.process.proc.waitForFinished(5000)


def fill(win, tiny_data, name, **changes):
    model, data = tiny_data
    settings = dict(model=model, dataset=data, max_steps=6, grad_accum=1, save_every=3) | changes
    win.form.set_config(TrainConfig(**settings))
    win.form.set_pipeline_choice("none")
    win.form.name.setText(name)


def train_here(run_dir, tiny_data, **changes):
    """A finished run written elsewhere: the engine `sarlang-cli train run` runs, in this process
    (the window's own runs start real processes in the tests that run them)."""
    from sarlang_core.train.engine import train

    model, data = tiny_data
    settings = dict(model=model, dataset=data, grad_accum=1) | changes
    state = train(run_dir, TrainConfig(**settings), None)
    assert state["status"] == "finished"


def run_to_end(qtbot, win, start):
    events = []
    win.process.progress.connect(events.append)
    with qtbot.waitSignal(win.runFinished, timeout=RUN_TIMEOUT) as blocker:
        assert start() is not None, win.last_error
    return blocker.args[0], blocker.args[1], events


def row_of(win, run_dir):
    def there():
        s = win.runs.summary_of(run_dir)
        assert s is not None and s.status not in ("running",)
    return there


def fragments(browser):
    """(text, background colour name) of every run of text in a QTextBrowser."""
    out = []
    block = browser.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            if frag.isValid():
                out.append((frag.text(), frag.charFormat().background().color().name()))
            it += 1
        block = block.next()
    return out


def test_the_form_is_built_from_the_params_and_round_trips_a_config(qtbot, train_win, tmp_path):
    form = train_win.form
    params = config_params()
    lora_r = form.fields["lora_r"]
    assert (lora_r.minimum(), lora_r.maximum()) == (1, 1024)
    assert params["lora_r"].help in lora_r.toolTip()
    lr = form.fields["learning_rate"]
    assert lr.decimals() == params["learning_rate"].decimals and lr.minimum() > 0
    sched = form.fields["scheduler"]
    assert [sched.itemData(i) for i in range(sched.count())] == list(params["scheduler"].choices)
    assert form.fields["train_vision"].toolTip() == params["train_vision"].help
    assert form.fields["max_steps"].specialValueText() == "epochs decide"

    config = TrainConfig(model=str(tmp_path / "base-model"), dataset=str(tmp_path / "project.db"),
                         images=str(tmp_path / "imgs"), split="train", statuses=("accepted",), eval_split="test",
                         epochs=2.5, max_steps=120, learning_rate=2e-4, scheduler="linear", warmup_ratio=0.05,
                         weight_decay=0.01, max_grad_norm=0.5, lora_r=16, lora_alpha=32, lora_dropout=0.05,
                         train_vision=True, batch_size=2, grad_accum=4, cutoff=1024, overlong="skip",
                         image_max_pixels=200_704, precision="fp32", gradient_checkpointing=True, seed=7,
                         save_every=50, keep_checkpoints=3, eval_every=20, deepspeed="zero2")
    form.set_config(config)
    assert form.config() == config
    assert form.model.currentText().startswith("base-model")
    pipe = tmp_path / "pipe.json"
    form.set_pipeline_choice(str(pipe))
    assert form.pipeline_choice() == str(pipe) and form.pipeline_file.isVisible()
    form.set_pipeline_choice("paper")
    assert form.pipeline_choice() == "paper" and not form.pipeline_file.isVisible()

    text = train_win.command_text()
    assert text.startswith("sarlang-cli train run --model") and "--lora-r 16" in text and "--pipeline paper" in text
    dialog = train_win.show_command()
    dialog.copy()
    from PySide6.QtWidgets import QApplication
    assert QApplication.clipboard().text() == dialog.text.toPlainText() == text
    dialog.close()


def test_the_window_fits_a_1366x768_screen(qtbot, train_win):
    hint = train_win.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768 - 40       # less a task bar / title bar
    assert train_win.curves.loss_plot.height() >= 250 and train_win.runs.table.height() >= 100
    form = train_win.form
    assert form.widget().width() <= form.viewport().width()       # nothing of the form is cut off at the right


def test_bad_input_says_what_to_fix_and_starts_nothing(qtbot, train_win, tiny_data, tmp_path):
    model, data = tiny_data
    form = train_win.form
    form.dataset.setText(data)
    assert form.model.currentText() == "Choose a model folder…"
    assert train_win.start() is None and "base model" in train_win.last_error
    form.set_model(model)
    form.dataset.setText("")
    assert train_win.start() is None
    assert "needs a dataset" in train_win.last_error and train_win.strip.message_label.isVisible()
    assert not train_win.process.running and not train_win.strip.busy
    assert train_win.strip.start_button.isEnabled()
    assert not (tmp_path / "runs").exists()
    assert form.dataset.hasFocus() or not train_win.isActiveWindow()
    assert train_win.show_command() is None
    screenshot(train_win, "training_bad_input")


def test_a_run_that_fails_says_why_with_the_processes_last_words(qtbot, train_win, tiny_data, tmp_path):
    fill(train_win, tiny_data, "no-data", dataset=str(tmp_path / "missing.json"))
    kind, ev, _ = run_to_end(qtbot, train_win, train_win.start)
    assert kind == "error"
    assert "missing.json" in ev["message"]
    shown = train_win.strip.message_label.text()
    assert "Run failed" in shown and "missing.json" in shown and "#e06c75" in shown
    assert "failed" in train_win.strip.status_label.text() and train_win.strip.start_button.isEnabled()
    assert not train_win.process.running
    # a run refused before it starts (its data is missing) writes nothing, so the list gains no row
    assert not Path(ev["run_dir"]).exists() and train_win.runs.summary_of(ev["run_dir"]) is None
    screenshot(train_win, "training_failed")


def test_preview_highlights_the_supervised_answer_and_shows_token_statistics(qtbot, train_win, tiny_data):
    fill(train_win, tiny_data, "preview")
    with qtbot.waitSignal(train_win.previewShown, timeout=60000) as blocker:
        train_win.preview()
    preview = blocker.args[0]
    assert not isinstance(preview, Exception), preview
    assert len(preview.samples) == 8 and preview.stats["count"] == 8
    view = train_win.data_preview
    assert train_win.tabs.currentWidget() is view
    summary = view.summary.text()
    assert "samples" in summary and "cutoff" in summary and f"{preview.stats['p95']:,}" in summary
    from app.training.preview import SUPERVISED_BG

    highlighted = QColor(SUPERVISED_BG).name()
    frags = fragments(view.text)
    supervised = [t for t, bg in frags if bg == highlighted]
    assert any("0 ships" in t for t in supervised) and any("1 ships" in t for t in supervised)
    assert not any("How many ships" in t for t in supervised)          # the prompt is context, not supervised
    assert any("How many ships" in t for t, _ in frags)
    screenshot(train_win, "training_preview")


def test_tools_menu_run_draws_the_curve_finishes_and_queues_the_adapter_benchmark(qtbot, window, tiny_data,
                                                                                  tmp_path):
    assert window.act_training.text().replace("&", "") == "Fine-tuning…"
    window.act_training.trigger()
    win = window.training_window
    assert win is not None and win.isVisible()
    try:
        win.resize(1366, 768)
        win.set_runs_folder(str(tmp_path / "runs"))
        fill(win, tiny_data, "lora-tiny")
        kind, ev, events = run_to_end(qtbot, win, win.start)
        assert kind == "done", win.last_error
        steps = [e for e in events if e["event"] == "step"]
        assert [e["step"] for e in steps] == [1, 2, 3, 4, 5, 6]
        points = win.curves.live_points()
        assert [s for s, _ in points] == [1, 2, 3, 4, 5, 6]
        assert [loss for _, loss in points] == pytest.approx([e["loss"] for e in steps])
        xs, ys = win.curves.live_lr.getData()
        assert len(xs) == 6 and max(ys) > 0
        assert "Finished" in win.strip.progress_bar.format() and "finished after 6 steps" in \
            win.strip.status_label.text()
        run_dir = ev["run_dir"]
        qtbot.waitUntil(row_of(win, run_dir), timeout=10000)
        summary = win.runs.summary_of(run_dir)
        assert summary.status == "finished" and summary.has_adapter and summary.step == 6
        qtbot.waitUntil(lambda: win.runs.selected_runs() == [run_dir], timeout=5000)
        assert win.runs.table.item(0, 1).text() == "✓ finished"
        assert win.runs.buttons["benchmark"].isEnabled() and not win.strip.resume_button.isEnabled()
        from app.training.form import TrainFormPanel
        assert TrainFormPanel().config() == win.form.config()          # the next form starts from this run's
        screenshot(win, "training_finished_1366")
        win.resize(1920, 1080)
        qtbot.wait(100)
        screenshot(win, "training_finished_1920")

        # the adapter against its base, raw and preprocessed, in the main window's benchmark queue
        win.after.ask_benchmark = lambda: (tiny_data[1], "vqa", "test")
        win.runs.buttons["benchmark"].click()
        qtbot.waitUntil(lambda: window.benchmark_window is not None and
                        len(window.benchmark_window.queue.entries) == 4, timeout=10000)
        configs = [e.config for e in window.benchmark_window.queue.entries]
        assert sum(c.backend.adapter is not None for c in configs) == 2
        assert sum(c.pipeline is not None for c in configs) == 2
        assert "queued" in win.strip.message_label.text()

        win.after.ask_folder = lambda _title, _start: str(tmp_path / "lf")
        win.runs.buttons["export"].click()
        qtbot.waitUntil(lambda: "LLaMA-Factory config written" in win.strip.message_label.text(), timeout=30000)
        assert (tmp_path / "lf" / "train_lora.yaml").is_file()
    finally:
        _kill(win)


def test_merge_and_register_a_finished_run(qtbot, train_win, tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("SARLANG_MODELS", str(tmp_path / "registry.json"))
    run_dir = str(tmp_path / "runs" / "to-merge")
    train_here(run_dir, tiny_data, max_steps=2, save_every=3)
    train_win.refresh(select=[run_dir])
    qtbot.waitUntil(lambda: train_win.runs.selected_finished() == run_dir, timeout=10000)
    train_win.after.ask_folder = lambda _title, _start: str(tmp_path / "merged")
    train_win.runs.buttons["merge"].click()
    qtbot.waitUntil(lambda: "Merged model written" in train_win.strip.message_label.text() or
                    "failed" in train_win.strip.message_label.text(), timeout=60000)
    assert "Merged model written" in train_win.strip.message_label.text(), train_win.last_error
    assert (tmp_path / "merged" / "config.json").is_file()
    train_win.after.ask_name = lambda _default: "tiny-sar-lora"
    with qtbot.waitSignal(train_win.after.registered, timeout=30000) as blocker:
        train_win.runs.buttons["register"].click()
    assert blocker.args == ["tiny-sar-lora"]
    assert "Registered" in train_win.strip.message_label.text(), train_win.last_error
    assert "tiny-sar-lora" in (tmp_path / "registry.json").read_text()


STOP_STEPS = 40


def test_stop_mid_run_then_resume_finishes_it(qtbot, train_win, tiny_data):
    from PySide6.QtCore import QTimer

    from sarlang_core.train import runs

    fill(train_win, tiny_data, "stop-me", max_steps=STOP_STEPS, save_every=500)
    win = train_win
    held = []

    def stop_after_the_first_step(e):
        if e["event"] == "step" and not win.process.stopping:
            # the trainer waits (SIGSTOP) until the window's stop request is on disk: a warm tiny step
            # takes ~20 ms, so the run could otherwise end before the request is written
            held.append(win.process.proc.processId())
            os.kill(held[-1], signal.SIGSTOP)
            win.stop()

    def go_on_once_asked():
        if held and win.process.run_dir and (Path(win.process.run_dir) / runs.STOP).exists():
            os.kill(held.pop(), signal.SIGCONT)

    poll = QTimer()
    poll.timeout.connect(go_on_once_asked)
    poll.start(5)
    win.process.progress.connect(stop_after_the_first_step)
    try:
        kind, ev, events = run_to_end(qtbot, win, win.start)
    finally:
        poll.stop()
        win.process.progress.disconnect(stop_after_the_first_step)
        for pid in held:                     # never leave a stopped process behind
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    assert kind == "stopped", win.last_error
    stopped_at = ev["step"]
    assert 1 <= stopped_at < STOP_STEPS
    assert "stopped at step" in win.strip.status_label.text() and "Resume" in win.strip.message_label.text()
    run_dir = ev["run_dir"]
    qtbot.waitUntil(row_of(win, run_dir), timeout=10000)
    assert win.runs.summary_of(run_dir).status == "stopped" and not win.runs.summary_of(run_dir).has_adapter
    qtbot.waitUntil(lambda: win.runs.selected_runs() == [run_dir], timeout=5000)
    assert win.strip.resume_button.isEnabled()
    screenshot(win, "training_stopped")

    kind, ev, events = run_to_end(qtbot, win, win.resume)
    assert kind == "done", win.last_error
    assert ev["step"] == STOP_STEPS
    resumed = [e["step"] for e in events if e["event"] == "step"]
    assert resumed[0] == stopped_at + 1 and resumed[-1] == STOP_STEPS
    assert [s for s, _ in win.curves.live_points()] == list(range(1, STOP_STEPS + 1))   # history, then new steps
    qtbot.waitUntil(lambda: (s := win.runs.summary_of(run_dir)) is not None and s.status == "finished", timeout=10000)
    assert win.runs.summary_of(run_dir).has_adapter


def test_selected_runs_lay_their_curves_over_each_other(qtbot, train_win, tiny_data, tmp_path):
    """Two runs written elsewhere (by the engine the CLI runs): the list finds them; selecting them
    overlays their losses."""
    runs = tmp_path / "runs"
    for name, lr in (("lr-1e-4", 1e-4), ("lr-5e-4", 5e-4)):
        train_here(runs / name, tiny_data, max_steps=3, save_every=3, learning_rate=lr)
    train_win.refresh()
    qtbot.waitUntil(lambda: train_win.runs.table.rowCount() == 2, timeout=10000)
    train_win.runs.select_runs([str(runs / "lr-1e-4"), str(runs / "lr-5e-4")])
    qtbot.waitUntil(lambda: len(train_win.curves.overlay_points()) == 2, timeout=10000)
    points = train_win.curves.overlay_points()
    assert [s for s, _ in points["lr-1e-4"]] == [1, 2, 3] == [s for s, _ in points["lr-5e-4"]]
    assert "lr-5e-4" in train_win.curves.legend.text()
    assert not train_win.runs.buttons["merge"].isEnabled()          # two selected: no single adapter
    train_win.runs.select_runs([str(runs / "lr-5e-4")])
    train_win.runs.buttons["use_settings"].click()
    qtbot.waitUntil(lambda: train_win.form.fields["learning_rate"].value() == pytest.approx(5e-4), timeout=5000)
    assert train_win.form.config().max_steps == 3


def test_curves_draw_eval_points_and_a_resume_replaces_the_steps_after_its_checkpoint(qtbot):
    from app.training.curves import TrainingCurvesView

    view = TrainingCurvesView()
    qtbot.addWidget(view)
    assert view.live_points() == [] and "Start a run" in view.legend.text()
    history = [{"event": "step", "step": s, "loss": 2.0 - 0.1 * s, "lr": 1e-4} for s in range(1, 6)]
    history.append({"event": "eval", "step": 4, "eval_loss": 1.75})
    view.start_live("lora-a", history[:4])               # stopped at a checkpoint after step 4 (step 5 was lost)
    view.add_event(history[5])
    assert "evaluation loss" in view.legend.text()
    xs, ys = view.live_eval.getData()
    assert list(xs) == [4] and list(ys) == [1.75]
    view.add_event({"event": "step", "step": 3, "loss": 1.0, "lr": 5e-5})    # written again: later points go
    assert view.live_points() == [(1, 1.9), (2, 1.8), (3, 1.0)]
    assert view.live_eval.getData()[0] is None or len(view.live_eval.getData()[0]) == 0
