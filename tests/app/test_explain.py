"""Per-word maps in the chat, end to end with a real tiny Qwen2.5-VL: click a word of an answer,
the maps of all its words come from the model lane, the word's map lies on the scene views at the
grid's rectangle, the panel's controls restyle it, switch method or model, export it; a cancel,
an error or a served model change nothing else."""

import numpy as np
import pytest
from gui_helpers import open_and_wait, screenshot, settle
from PySide6.QtCore import QPoint, QRectF, Qt, QUrl
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QApplication, QDockWidget

from app import workers
from app.explain.wiring import CANCELLED, SERVED_LINE
from app.explain.words import parse_href
from app.main import sample_scene_path
from sarlang_core.services.explain import text_words

REGION = QRectF(384, 256, 320, 256)          # a region with the harbour: a quick model input (~80 tokens)
WAIT = 30000


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from sarlang_core.vlm.tiny import build_tiny_qwen2_5_vl
    # seed 4: its random answers about the region have several content words ("west ect yes ...")
    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("vlm") / "tiny-qwen2.5-vl", seed=4)


@pytest.fixture(scope="module")
def tiny_lora(tiny, tmp_path_factory):
    from sarlang_core.vlm.tiny import build_tiny_lora
    return build_tiny_lora(tiny, tmp_path_factory.mktemp("lora") / "tiny-lora", scale=0.5)


def load(qtbot, win, model, adapter=None):
    from sarlang_core.vlm.local import LocalBackend

    with qtbot.waitSignal(win.chat.controller.loaded, timeout=60000):
        win.chat.load_backend(LocalBackend(model, adapter))


def ask(qtbot, win, question="Where is the ship?", tokens=10):
    panel = win.chat_panel
    win.compare.start_region(REGION)
    panel.source.setCurrentIndex(panel.source.findData("region"))
    panel.max_tokens.setValue(tokens)
    panel.input.setText(question)
    with qtbot.waitSignal(win.chat.controller.finished, timeout=WAIT) as blocker:
        panel.ask_button.click()
    return blocker.args[0]


@pytest.fixture
def answered(qtbot, window, tiny):
    """The sample scene, the tiny model loaded, one answer about a region: (window, exchange)."""
    open_and_wait(qtbot, window, sample_scene_path())
    settle(qtbot, window)
    load(qtbot, window, tiny)
    ex = ask(qtbot, window)
    assert text_words(ex.answer), ex.answer
    return window, ex


def click(qtbot, win, exchange=0, word=0, timeout=WAIT):
    """Click word ``word`` of answer ``exchange`` in the chat (through the browser's anchorClicked)
    and wait until its map is on the scene."""
    with qtbot.waitSignal(win.explain.wordShown, timeout=timeout) as blocker:
        win.chat_panel.view.anchorClicked.emit(QUrl(f"explain:{exchange}:{word}"))
    assert blocker.args == [word]
    return win.explain.result


def word_point(view, href):
    """Where the linked word ``href`` is drawn in the chat's viewport."""
    doc = view.document()
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            if frag.charFormat().anchorHref() == href:
                cursor = QTextCursor(doc)
                cursor.setPosition(frag.position() + 1)
                return view.cursorRect(cursor).center() - QPoint(2, 0)
            it += 1
        block = block.next()
    raise AssertionError(f"no link {href}")


def pixels(win):
    return win.explain.overlays[1].image.image.copy()


def test_a_clicked_word_shows_its_map_on_the_scene_views(qtbot, answered):
    win, ex = answered
    links = win.chat_panel.links()
    assert [parse_href(h) for h in links] == [(0, w.index) for w in text_words(ex.answer)]
    assert win.chat_panel.last_answer == ex.answer            # copy and export as before
    view = win.chat_panel.view
    view.anchorClicked.connect(lambda url: clicked.append(url.toString()))
    clicked = []
    with qtbot.waitSignal(win.explain.mapsReady, timeout=WAIT) as maps:    # a real click on the word
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=word_point(view, "explain:0:0"))
    assert clicked == ["explain:0:0"]
    result = maps.args[0]
    qtbot.waitUntil(lambda: win.explain.word == 0, timeout=WAIT)
    # all the answer's words in one call; the grid lies on the region the model saw
    assert [w.text for w in result.words] == [w.text for w in text_words(ex.answer)]
    assert result.placement.rect == pytest.approx((384, 256, 704, 512))
    x0, y0, x1, y1 = result.placement.rect
    for overlay in win.explain.overlays:            # raw, processed and swipe views
        img = overlay.image
        assert img.isVisible() and img.image is not None
        r = img.mapRectToParent(img.boundingRect())
        assert (r.left(), r.top(), r.right(), r.bottom()) == pytest.approx((x0, y0, x1, y1))
        assert 0 < img.zValue() < 15                # above the scene, below the answer boxes
        assert overlay.marker.isVisible()
    px, py = result.peak_scene(result.words[0])
    assert win.explain.overlays[1].marker.data["x"][0] == pytest.approx(px)
    # the legend and the word list say the word, its peak, where it is (pixels and map coordinates)
    panel = win.explain_panel
    info = panel.legend_info.text()
    assert result.words[0].text in panel.legend_title.text() and "Grad-CAM" in panel.legend_title.text()
    assert f"x {px:,.0f}, y {py:,.0f} px" in info and "EPSG:32631" in info and "° N" in info
    assert panel.words.count() == sum(w.word.content for w in result.words) >= 2
    assert panel.words.currentRow() == 0
    assert win.chat_panel.view.toPlainText().count(ex.answer.strip()) == 1   # the chat text is untouched
    # another word of the same answer: from the cache, at once
    if len(result.words) > 1:
        click(qtbot, win, 0, 1, timeout=1000)
        assert win.explain.result is result and win.explain.word == 1
    # swipe: the one view's overlay lies on the same rectangle
    win.set_compare_mode("swipe")
    qtbot.wait(50)
    sw = win.explain.overlays[2].image
    assert sw.isVisible() and sw.mapRectToParent(sw.boundingRect()) == QRectF(x0, y0, x1 - x0, y1 - y0)
    win.set_compare_mode("side")
    win.compare.raw_view.clear_region()
    win.compare.proc_view.clear_region()
    win.compare.set_view(QRectF(x0 - 160, y0 - 120, (x1 - x0) + 320, (y1 - y0) + 240))
    for w, h in ((1366, 768), (1920, 1080)):
        win.resize(w, h)
        qtbot.wait(200)
        QApplication.processEvents()
        screenshot(win, f"explain_{w}x{h}")
        # the whole panel shows, export buttons included, without scrolling
        area = win.explain.dock.widget()
        assert not area.verticalScrollBar().isVisible(), (w, h)
        if w == 1366:
            win.set_compare_mode("swipe")
            win.compare.set_view(QRectF(x0 - 160, y0 - 120, (x1 - x0) + 320, (y1 - y0) + 240))
            win.compare.swipe.set_position((x0 + x1) / 2)
            qtbot.wait(200)
            screenshot(win, "explain_swipe_1366x768")
            win.set_compare_mode("side")
            chat_dock = next(d for d in win.findChildren(QDockWidget) if d.windowTitle() == "Chat")
            chat_dock.raise_()
            qtbot.wait(100)
            screenshot(win, "explain_chat_links_1366x768")
            win.explain.dock.raise_()


def test_opacity_threshold_and_colours_change_the_map_shown(qtbot, answered):
    win, _ex = answered
    click(qtbot, win)
    panel = win.explain_panel
    before = pixels(win)
    panel.opacity.setValue(90)
    after_opacity = pixels(win)
    assert after_opacity[..., 3].max() > before[..., 3].max()
    assert (after_opacity[..., :3] == before[..., :3]).all()
    panel.threshold.setValue(0)
    all_drawn = (pixels(win)[..., 3] > 0).mean()
    panel.threshold.setValue(70)
    some_drawn = (pixels(win)[..., 3] > 0).mean()
    assert all_drawn == pytest.approx(1.0) and some_drawn < all_drawn
    rgb = pixels(win)[..., :3].copy()
    panel.colormap.setCurrentIndex(panel.colormap.findData("jet"))
    assert not (pixels(win)[..., :3] == rgb).all()
    assert panel.colour_bar.colormap == "jet" and panel.colour_bar.threshold == pytest.approx(0.7)
    panel.clear_button.click()
    assert not any(o.image.isVisible() for o in win.explain.overlays)
    assert not panel.png_button.isEnabled() and panel.legend_title.text() == "No map shown"


def test_switching_the_method_recomputes_and_the_cache_keeps_each(qtbot, answered):
    win, _ex = answered
    first = click(qtbot, win)
    panel = win.explain_panel
    with qtbot.waitSignal(win.explain.mapsReady, timeout=WAIT) as blocker:
        panel.method.setCurrentIndex(panel.method.findData("attention"))
    assert blocker.args[0].method == "attention" and blocker.args[0] is not first
    assert "Attention" in panel.legend_title.text() or "attention" in panel.legend_title.text().lower()
    assert win.explain.overlays[1].image.isVisible()
    assert set(win.explain.cache) == {(0, "gradcam", True), (0, "attention", True)}
    with qtbot.waitSignal(win.explain.mapsReady, timeout=1000) as blocker:   # from the cache
        panel.method.setCurrentIndex(panel.method.findData("gradcam"))
    assert blocker.args[0] is first


def test_keys_move_between_the_words_of_the_list(qtbot, answered):
    win, _ex = answered
    result = click(qtbot, win)
    lst = win.explain_panel.words
    if lst.count() < 2:
        pytest.skip(f"the tiny model's answer has one content word: {result.answer!r}")
    lst.setFocus()
    second = lst.item(1).data(Qt.ItemDataRole.UserRole)
    with qtbot.waitSignal(win.explain.wordShown, timeout=1000) as blocker:
        qtbot.keyClick(lst, Qt.Key.Key_Down)
    assert blocker.args == [second] and win.explain.word == second
    with qtbot.waitSignal(win.explain.wordShown, timeout=1000):
        qtbot.keyClick(lst, Qt.Key.Key_Up)
    assert lst.currentRow() == 0


def test_export_png_and_geotiff(qtbot, answered, tmp_path):
    import rasterio
    from PIL import Image

    win, _ex = answered
    result = click(qtbot, win)
    png, tif = tmp_path / "map.png", tmp_path / "map.tif"
    with qtbot.waitSignal(win.explain.exported, timeout=WAIT):
        win.explain_panel.exportPngRequested.emit(str(png))
    with qtbot.waitSignal(win.explain.exported, timeout=WAIT):
        win.explain_panel.exportGeotiffRequested.emit(str(tif))
    w, h = result.image.image.size     # the image the model saw, enlarged to 512 px when smaller
    zoom = max(1.0, 512 / max(w, h))
    assert Image.open(png).size == (round(w * zoom), round(h * zoom) + 34)   # + the legend strip
    scene = win.session.scene
    with rasterio.open(tif) as ds:
        assert ds.crs == scene.crs and ds.dtypes[0] == "float32" and ds.nodata == -1.0
        data = ds.read(1)
        sx = scene.width / ds.width
        assert ds.transform.a == pytest.approx(scene.transform.a * sx)
    x0, y0, x1, y1 = (int(v / sx) for v in result.placement.rect)
    inside = data[y0 + 1:y1 - 1, x0 + 1:x1 - 1]
    assert (inside >= 0).all() and inside.max() == pytest.approx(1.0, abs=0.05)
    outside = data.copy()
    outside[y0:y1, x0:x1] = -1.0
    assert (outside == -1.0).all()                     # nodata where the model did not look
    assert "Saved" in win.explain_panel.message.text()


def test_cancel_leaves_the_chat_and_the_scene_as_they_were(qtbot, answered):
    win, ex = answered
    html = win.chat_panel.view.toHtml()
    before = [(e.question, e.answer) for e in win.chat.conversation.exchanges]
    with qtbot.waitSignal(win.explain.cancelled, timeout=WAIT):
        win.chat_panel.view.anchorClicked.emit(QUrl("explain:0:0"))
        assert win.explain.busy and win.explain_panel.cancel_button.isVisible()
        win.explain_panel.cancel_button.click()
    workers.pool("model").waitForDone(WAIT)
    qtbot.wait(100)                                    # whatever the task delivered is dropped
    assert not any(o.image.isVisible() for o in win.explain.overlays)
    assert win.explain.result is None and not win.explain.cache
    assert [(e.question, e.answer) for e in win.chat.conversation.exchanges] == before
    assert win.chat_panel.view.toHtml() == html
    assert win.explain_panel.message.text() == CANCELLED
    assert not win.explain_panel.cancel_button.isVisible()
    click(qtbot, win)                                  # and it works again afterwards


def test_bad_input_is_explained_in_the_panel_only(qtbot, answered):
    from sarlang_core.services.chat import Exchange

    win, ex = answered
    click(qtbot, win)
    shown = pixels(win)
    with qtbot.waitSignal(win.explain.failed, timeout=1000) as blocker:
        win.explain.explain_word(0, 999)
    assert "no word 1000" in blocker.args[0] and blocker.args[0] in win.explain_panel.message.text()
    with qtbot.waitSignal(win.explain.failed, timeout=1000):
        win.explain.explain_word(7, 0)
    # an empty answer: the service says so; the map shown and the chat stay
    win.chat.conversation.exchanges.append(Exchange(question="Anything?", answer="  ", crop=ex.crop, source=ex.source))
    with qtbot.waitSignal(win.explain.failed, timeout=WAIT) as blocker:
        win.explain.explain_word(1, 0)
    assert "empty" in blocker.args[0] and "⚠" in win.explain_panel.message.text()
    assert (pixels(win) == shown).all() and win.explain.overlays[0].image.isVisible()
    assert win.chat_panel.last_answer == ex.answer


def test_new_chat_new_scene_and_new_model_clear_the_maps(qtbot, answered, tiny):
    win, _ex = answered
    click(qtbot, win)
    win.chat_panel.findChild(type(win.chat_panel.ask_button), "new_chat").click()
    assert not win.explain.cache and not any(o.image.isVisible() for o in win.explain.overlays)
    assert win.chat_panel.links() == [] and win.explain_panel.words.count() == 0
    ask(qtbot, win)
    click(qtbot, win)
    load(qtbot, win, tiny)                              # a new model
    assert not win.explain.cache and not win.explain.overlays[1].image.isVisible()
    click(qtbot, win)
    open_and_wait(qtbot, win, sample_scene_path())     # a new scene
    assert not win.explain.cache and not win.explain.overlays[1].image.isVisible()
    assert win.chat_panel.links() == []


def test_base_and_fine_tuned_maps_of_one_answer(qtbot, window, tiny, tiny_lora):
    open_and_wait(qtbot, window, sample_scene_path())
    settle(qtbot, window)
    panel = window.explain_panel
    load(qtbot, window, tiny)
    assert not panel.base_button.isEnabled() and "LoRA adapter" in panel.base_button.toolTip()
    load(qtbot, window, tiny, tiny_lora)
    assert panel.base_button.isEnabled() and panel.tuned_button.isChecked()
    ask(qtbot, window)
    tuned = click(qtbot, window)
    assert tuned.adapter_used is True and "Fine-tuned" in panel.legend_info.text()
    with qtbot.waitSignal(window.explain.mapsReady, timeout=WAIT) as blocker:
        panel.base_button.click()
    base = blocker.args[0]
    assert base.adapter_used is False and "Base model" in panel.legend_info.text()
    assert base.answer == tuned.answer
    assert not np.allclose(base.words[0].scores, tuned.words[0].scores)


def test_a_served_model_says_why_there_are_no_maps(qtbot, window, server):
    from sarlang_core.services.models import open_backend

    open_and_wait(qtbot, window, sample_scene_path())
    settle(qtbot, window)
    with qtbot.waitSignal(window.chat.controller.loaded, timeout=WAIT):
        window.chat.load_backend(open_backend("sar-vlm", endpoint=server.url, api_key="EMPTY"))
    assert SERVED_LINE in window.explain_panel.message.text()
    ask(qtbot, window)
    ask(qtbot, window)
    text = window.chat_panel.view.toPlainText()
    assert text.count(SERVED_LINE) == 1 and window.chat_panel.links() == []
    # an endpoint nobody serves (never contacted): the same, plainly, on a click too
    closed = open_backend("sar-vlm", endpoint="http://127.0.0.1:9/v1", api_key="EMPTY")
    window.chat.controller.backend = closed
    with qtbot.waitSignal(window.explain.failed, timeout=1000) as blocker:
        window.explain.explain_word(0, 0)
    assert "served model" in blocker.args[0] and not window.explain.overlays[1].image.isVisible()


def test_each_answer_gets_its_own_links_and_the_text_stays(qtbot, answered):
    win, first = answered
    second = ask(qtbot, win, "Describe the scene")
    view = win.chat_panel.view
    n1, n2 = len(text_words(first.answer)), len(text_words(second.answer))
    assert [parse_href(h) for h in win.chat_panel.links()] == [(0, j) for j in range(n1)] + [(1, j) for j in range(n2)]
    text = view.toPlainText()
    assert first.answer.strip() in text and second.answer.strip() in text
    assert "Click a word" in text and text.count("Click a word") == 1        # the hint, once a conversation
    # the text after the links (the hint, the next question) is no link
    hint = view.document().find("Click a word")
    assert not hint.charFormat().isAnchor()
    click(qtbot, win, 1, 0)
    assert win.explain.key[0] == 1 and "answer 2" in win.explain_panel.legend_title.text()
