"""The dataset review window, keyboard first: accept, reject, edit, undo, bulk, filters."""


import numpy as np
import pytest
from gui_helpers import new_chips_project, screenshot
from PySide6.QtCore import Qt

from sarlang_core.datasets.store import Store


@pytest.fixture
def project(tmp_path):
    return new_chips_project(tmp_path, quality_checks=True)


@pytest.fixture
def review(open_review, project):
    return open_review(project)


def queue_settled(qtbot, win):
    """The queue is read off the UI thread: wait until the newest one is in place."""
    qtbot.waitUntil(lambda: not win.queue_loading, timeout=10000)


def key(qtbot, win, k, mod=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(win, k, mod)


def test_keyboard_review_flow(qtbot, review, project):
    first = review.queue.current()
    assert first is not None and review.question.toPlainText() == first.question
    qtbot.waitUntil(lambda: review.sar_view.image.image is not None, timeout=10000)
    assert len(review.overlay.items) >= 1                      # the image's boxes are drawn
    key(qtbot, review, Qt.Key.Key_A)
    second = review.queue.current()
    assert second.id != first.id
    key(qtbot, review, Qt.Key.Key_X)
    third = review.queue.current()                             # reject moved on, too
    assert third.id not in (first.id, second.id) and f"#{third.id} " in review.meta.text()
    key(qtbot, review, Qt.Key.Key_E)
    review.answer.setPlainText("edited answer")
    key(qtbot, review, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert review.queue.current().id != third.id               # saving an edit moves on
    with Store.open(project) as store:
        assert store.item(first.id).status == "accepted"
        assert store.item(second.id).status == "rejected"
        assert store.item(third.id).answer == "edited answer" and store.item(third.id).status == "edited"
        edits = store.history(third.id)
        assert [h["action"] for h in edits] == ["edit"] and edits[0]["reviewer"] == "tester"
        assert edits[0]["after"]["answer"] == "edited answer"
    key(qtbot, review, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    with Store.open(project) as store:
        assert store.item(third.id).status == "pending"        # undo reverted the edit
        assert store.item(third.id).answer == third.answer
    # ... and shows the item it reverted, with its original answer
    assert f"#{third.id} " in review.meta.text() and review.answer.toPlainText() == third.answer
    # the counts are re-read off the UI thread after an undo
    qtbot.waitUntil(lambda: "reviewed 2 of" in review.progress.text(), timeout=10000)
    stats = review.stats_view.last
    assert stats["items"] == 36 and stats["boxes_per_category"] == {"ship": 4}
    assert "36 items" in review.stats_view.summary.text()
    screenshot(review, "review_window")
    assert "reviewed 2 of" in review.progress.text()


def shown_items(qtbot, win):
    """Step through the whole queue with the N key: the item header of each item shown."""
    shown = [win.meta.text()]
    for _ in range(win.queue.total - 1):
        key(qtbot, win, Qt.Key.Key_N)
        shown.append(win.meta.text())
    return shown


def test_filters_and_bulk(qtbot, review, project):
    with Store.open(project) as store:
        counting = store.count_items(type="counting", status="pending")
        others = store.count_items(status="pending") - counting
    assert counting > 0 and others > 0                          # the filter has something to leave out
    review.type_filter.setCurrentIndex(review.type_filter.findData("counting"))
    queue_settled(qtbot, review)
    assert f"/ {counting} in this queue" in review.progress.text()
    shown = shown_items(qtbot, review)
    assert len(set(shown)) == counting and all(" · counting · " in meta for meta in shown)
    n = review.bulk_apply("accepted")
    assert n == counting                                        # "all shown" and no more
    with Store.open(project) as store:
        assert store.count_items(status="accepted") == counting
        assert store.count_items(status="pending") == others
    review.status_filter.setCurrentIndex(review.status_filter.findData("accepted"))
    queue_settled(qtbot, review)
    assert review.queue.total == n and f"/ {n} in this queue" in review.progress.text()
    key(qtbot, review, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    with Store.open(project) as store:
        assert store.count_items(status="accepted") == 0       # one undo reverts the whole bulk step


def _show_tab(qtbot, review, name):
    tabs = review.stats_view.tabs
    tabs.setCurrentIndex([tabs.tabText(i) for i in range(tabs.count())].index(name))
    review.resize(1500, 900)


def test_answer_distributions_follow_the_store(qtbot, review, project):
    panel = review.stats_view.answers
    _show_tab(qtbot, review, "Answers")
    qtbot.waitUntil(lambda: panel.data is not None, timeout=10000)
    types = [panel.type_combo.itemData(i) for i in range(panel.type_combo.count())]
    assert "counting" in types and "identification" in types
    panel.select_type("identification")
    ident = panel.data["identification"]
    assert ident["kind"] == "answers" and panel.table.rowCount() >= len(ident["top"])
    assert panel.table.item(0, 0).text() == ident["top"][0]["answer"]
    ticks = panel.plot.getAxis("left")._tickLevels[0]
    assert max(ticks)[1] == ident["top"][0]["answer"][:26]     # the most frequent answer is drawn on top
    screenshot(review, "review_answers")
    panel.select_type("counting")
    assert panel.data["counting"]["kind"] == "numeric"
    assert panel.plot.getAxis("bottom").labelText == "number in the answer"
    screenshot(review, "review_answers_counting")

    # a bulk step changes the store: the counts follow (debounced, off the UI thread)
    before = panel.data
    review.status_filter.setCurrentIndex(review.status_filter.findData("any"))
    panel.status_combo.setCurrentText("accepted + edited")
    qtbot.waitUntil(lambda: panel.data is not before and panel.data == {}, timeout=10000)
    assert "No items" in panel.summary.text()
    review.bulk_apply("accepted")
    qtbot.waitUntil(lambda: sum(d["total"] for d in panel.data.values()) == 36, timeout=10000)


def test_similarity_runs_off_the_ui_thread(qtbot, review, project, tmp_path):
    panel = review.stats_view.similarity
    _show_tab(qtbot, review, "Similarity")
    features = tmp_path / "features.npy"
    np.save(features, np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32))   # one row per image
    assert panel.text_kind.currentData() == "auto"     # the default works on this template-only project
    panel.features.edit.setText(str(features))
    panel.compute_button.click()
    assert panel.running and not panel.compute_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.running, timeout=120000)
    text = panel.result["text"]
    assert text["n"] >= 2 and text["pairs"] == text["n"] * (text["n"] - 1) // 2
    assert 0.0 < text["mean"] <= 1.0 and text["var"] >= 0.0
    assert panel.result["image"]["n"] == 4 and panel.result["image"]["pairs"] == 6
    assert panel.table.rowCount() == 2 and panel.table.item(0, 1).text() == f"{text['n']:,}"
    assert panel.table.item(0, 0).text().startswith("text: qa") and "questions + answers" in panel.status.text()
    assert panel.table.item(0, 6).text() == "0.49 / 0.16"                     # the paper's Table 3
    screenshot(review, "review_similarity")
    # a features file that does not fit the project: the error is shown, the panel stays usable
    np.save(features, np.zeros((3, 8), np.float32))
    panel.start()
    qtbot.waitUntil(lambda: not panel.running, timeout=120000)
    assert "3 feature rows" in panel.status.text() and panel.compute_button.isEnabled()
    panel.features.edit.clear()
    # cancel before it finishes: the panel says so and can run again
    panel.start()
    panel.cancel()
    qtbot.waitUntil(lambda: not panel.running, timeout=120000)
    assert panel.compute_button.isEnabled()
    assert panel.status.text() in ("Cancelled.", "Done.")


def test_the_main_window_pipeline_becomes_the_projects(qtbot, window, project):
    """Dataset ▸ Use the main window's Pipeline: recorded in the project (export uses it) and the
    chips are rendered through it."""
    from sarlang_core.preprocess.pipeline import FilterSpec, Pipeline
    from sarlang_core.services.datasets import project_pipeline

    review = window.open_review(str(project))
    qtbot.addWidget(review)
    queue_settled(qtbot, review)
    qtbot.waitUntil(lambda: review.sar_view.image.image is not None, timeout=10000)
    before = review.sar_view.image.image.copy()
    chosen = Pipeline(filter=FilterSpec(name="lee", window=5))
    window.pipeline_panel.set_pipeline(chosen)
    assert review.act_use_pipeline.isEnabled()
    review.act_use_pipeline.trigger()
    with Store.open(project) as store:
        assert project_pipeline(store).to_dict() == window.pipeline_panel.pipeline().to_dict()
    assert review.pipeline.filter.name == "lee"
    # the chip on screen is rendered again through the adopted Pipeline
    qtbot.waitUntil(lambda: review.sar_view.image.image.shape != before.shape
                    or (review.sar_view.image.image != before).any(), timeout=10000)


def test_fresh_counts_leave_an_edit_in_progress_alone(qtbot, review):
    key(qtbot, review, Qt.Key.Key_E)
    review.answer.setPlainText("half-typed answer")
    review.stats_view.last = None
    review._refresh_counts()
    qtbot.waitUntil(lambda: review.stats_view.last is not None, timeout=10000)   # the counts are in
    assert review.editing and review.answer.toPlainText() == "half-typed answer"


def test_results_arriving_after_close_are_dropped(qtbot, review):
    """A queue, counts or chip still on its way when the window closes (its store closed) is
    dropped, not shown: before, it raised "the store is closed" in the Qt event loop."""
    from app import workers

    queue_settled(qtbot, review)
    review.apply_filters()          # a fresh queue and counts are now being read off the UI thread
    review.close()
    workers.wait_all(10000)
    qtbot.wait(100)                 # their results are delivered to the closed window here
    assert review.closed
    review.apply_filters()          # a dataset step finishing late asks for nothing
    workers.wait_all(10000)
    qtbot.wait(50)
