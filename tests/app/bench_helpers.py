"""What the benchmark-window tests share: a small SARLANG-1M style dataset, filling the form,
running to the end, reading the runs table and the queue."""

import json

import numpy as np
from PIL import Image

RUN_TIMEOUT = 90000


def bench_dataset(folder, n):
    """A SARLANG-1M style ShareGPT file: n SAR-like chips, a counting and a land-cover question each."""
    folder.mkdir(parents=True, exist_ok=True)
    recs = []
    for i in range(n):
        rng = np.random.default_rng(i)
        chip = (rng.gamma(1.0, 1.0, (96, 128)) * np.linspace(20, 90, 128)).clip(0, 255).astype(np.uint8)
        Image.fromarray(chip).save(folder / f"chip{i}.png")
        recs.append({"messages": [{"role": "user", "content": "<image>How many ships are there in the image?"},
                                  {"role": "assistant", "content": str(i % 3)},
                                  {"role": "user", "content": "What is the dominant land cover?"},
                                  {"role": "assistant", "content": "farmland"}], "images": [f"chip{i}.png"]})
    (folder / "test.json").write_text(json.dumps(recs))
    return folder / "test.json"


def fill_form(win, ep, source, name, endpoint=None, judge=True, concurrency=1):
    f = win.form
    f.name.setText(name)
    f.task.setCurrentIndex(f.task.findData("vqa"))
    f.model.setCurrentIndex(f.model.findData("endpoint"))
    f.endpoint.setText(endpoint or ep.url)
    f.served_model.setText("sar-vlm")
    f.label.setText("SAR-VLM")
    f.param.setText("3B")
    f.dataset.setText(str(source))
    f.preprocess.setCurrentIndex(f.preprocess.findData("none"))
    f.judge.setCurrentIndex(f.judge.findData("endpoint" if judge else "offline"))
    f.judge_endpoint.setText(ep.url)
    f.concurrency.setValue(concurrency)


def run_to_end(qtbot, win, start=None):
    events = []
    win.process.progress.connect(events.append)
    with qtbot.waitSignal(win.runFinished, timeout=RUN_TIMEOUT) as blocker:
        (start or win.start)()
    return blocker.args[0], blocker.args[1], events


def rows_loaded(qtbot, win, n):
    qtbot.waitUntil(lambda: not win.process.running and not win.refreshing, timeout=20000)
    assert win.runs.table.rowCount() == n


def cell(win, row, header):
    return win.runs.table.item(row, win.runs.columns.index(header)).text()


def queue_cells(win, col):
    t = win.queue.table
    return [t.item(r, col).text() for r in range(t.rowCount())]
