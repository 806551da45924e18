"""The pipeline panel: controls built from the recipe's field metadata, the limits line agreeing
with the chosen mode, the recipe naming the band, a visible SNAP-exact check box, screenshots."""

from __future__ import annotations

import argparse

import pytest
from gui_helpers import SHOTS, open_and_wait, settle, show_styled

from sarlang_core.preprocess.pipeline import (
    DAMPING,
    DOMAIN,
    FILTER_NAME,
    HIGH,
    LIMITS,
    LOOKS,
    LOW,
    QUANTITY,
    WINDOW,
    FilterSpec,
    Pipeline,
)
from sarlang_core.preprocess.stretch import StretchLimits

pytestmark = pytest.mark.gui


@pytest.fixture
def panel(qtbot):
    from app.viewer.pipeline_panel import PipelinePanel

    return show_styled(qtbot, PipelinePanel, (300, 720))


def combo_data(box):
    return tuple(box.itemData(i) for i in range(box.count()))


def test_controls_and_cli_agree_with_the_field_metadata(panel):
    for spin, param in ((panel.window, WINDOW), (panel.looks, LOOKS), (panel.damping, DAMPING),
                        (panel.low, LOW), (panel.high, HIGH)):
        assert (spin.minimum(), spin.maximum()) == pytest.approx(param.ui_range), param.name
        assert spin.singleStep() == param.step and spin.toolTip() == param.help
    assert (panel.window.minimum(), panel.window.maximum()) == (WINDOW.min, WINDOW.max)
    assert sorted(combo_data(panel.filter)) == sorted(FILTER_NAME.choices)
    assert combo_data(panel.quantity) == QUANTITY.choices and combo_data(panel.domain) == DOMAIN.choices
    assert combo_data(panel.limits_mode) == LIMITS.choices
    # the panel starts on the default recipe, and every value it can offer is a valid recipe
    assert panel.pipeline() == Pipeline() and panel.filter.currentData() == FilterSpec().name
    FilterSpec(name="lee", window=panel.window.maximum(), looks=panel.looks.minimum(),
               damping=panel.damping.maximum())
    from sarlang_core.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    flags = {a.dest: a for a in sub.choices["preprocess"]._actions}
    assert tuple(flags["filter"].choices) == FILTER_NAME.choices
    assert tuple(flags["quantity"].choices) == QUANTITY.choices    # "db" too (issue 10 case 10)
    assert WINDOW.bounds_text() in flags["window"].help and LOOKS.help in flags["looks"].help


def test_out_of_range_typing_is_refused_and_said(panel, qtbot):
    panel.low.setValue(99.0)
    panel.high.setValue(50.0)  # low >= high: the last good recipe stays
    assert "low < high" in panel.recipe.text()
    assert panel.pipeline().stretch.high > panel.pipeline().stretch.low


def small_scene_limits(mode):
    return StretchLimits(-20.0, 5.0, 2.0, 98.0, mode, 0, 1, 1000).describe()


def test_limits_line_agrees_with_the_mode(panel):
    panel.set_limits_text(small_scene_limits("exact"))  # an estimate that read every pixel
    assert panel.limits_mode.currentText().startswith("Estimated")
    text = panel.limits_label.text()
    assert "full scene, exact" not in text and "the estimate read every pixel: exact" in text
    panel.set_limits_text(StretchLimits(-20.0, 5.0, 2.0, 98.0, "estimate", 2, 4, 1000).describe())
    assert "read every pixel" not in panel.limits_label.text()
    panel.limits_mode.setCurrentIndex(panel.limits_mode.findData("exact"))
    panel.set_limits_text(small_scene_limits("exact"))
    assert panel.limits_label.text() == small_scene_limits("exact")


def indicator_pixels(box):
    from PySide6.QtWidgets import QStyle, QStyleOptionButton

    opt = QStyleOptionButton()
    box.initStyleOption(opt)
    r = box.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, opt, box)
    img = box.grab().toImage()
    edge = img.pixelColor(r.left(), r.center().y())
    centre = img.pixelColor(r.center())
    return edge, centre


def grey(c):
    return 0.299 * c.red() + 0.587 * c.green() + 0.114 * c.blue()


def test_snap_exact_check_box_is_visible_on_the_dark_theme(panel, qtbot):
    from PySide6.QtGui import QColor

    assert panel.snap.isEnabled() and panel.filter.currentData() == "refined-lee"
    background = QColor("#1c1f23")  # the theme's window colour (resources/style.qss)
    panel.snap.setChecked(False)
    edge_off, centre_off = indicator_pixels(panel.snap)
    panel.snap.setChecked(True)
    edge_on, centre_on = indicator_pixels(panel.snap)
    assert abs(grey(edge_off) - grey(background)) > 60   # the empty box's edge stands out
    assert abs(grey(edge_on) - grey(background)) > 60
    assert abs(grey(centre_on) - grey(centre_off)) > 60 or abs(centre_on.blue() - centre_off.blue()) > 120
    SHOTS.mkdir(exist_ok=True)
    panel.grab().save(str(SHOTS / "pipeline_panel_alone.png"))


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_panel_on_the_sample_scene(qtbot, window, size):
    from app.main import sample_scene_path

    window.resize(*size)
    open_and_wait(qtbot, window, sample_scene_path())
    settle(qtbot, window)
    panel = window.pipeline_panel
    # (b) the recipe names the band as the band box does
    band = panel.band.currentText()
    assert band and not band.startswith("Band ") and panel.recipe.text().startswith(f"{band} → ")
    assert "band 0" not in panel.recipe.text()
    # (a) the sample is its own overview: "Estimated" and the line under it agree
    assert panel.limits_mode.currentData() == "estimate"
    qtbot.waitUntil(lambda: panel.limits_label.text().endswith(" px)"))   # the limits of the open scene
    text = panel.limits_label.text()
    assert "full scene, exact" not in text and "the estimate read every pixel: exact" in text
    # a change of band renames the recipe
    if panel.band.count() > 1:
        panel.band.setCurrentIndex(1)
        assert panel.recipe.text().startswith(f"{panel.band.currentText()} → ")
        panel.band.setCurrentIndex(0)
        settle(qtbot, window)
    SHOTS.mkdir(exist_ok=True)
    w, h = size
    window.grab().save(str(SHOTS / f"pipeline_panel_window_{w}x{h}.png"))
    panel.grab().save(str(SHOTS / f"pipeline_panel_{w}x{h}.png"))


def test_db_scene_warning_stays_in_the_panel_until_the_quantity_says_db(qtbot, window, tmp_path):
    """Issue 10 case 10: the GUI flashed the dB warning in the status bar for a few seconds."""
    import numpy as np

    from sarlang_core import synthetic as syn

    rng = np.random.default_rng(4)
    data = (10 * np.log10(rng.gamma(1.0, 1.0, (1, 128, 128)) * 0.1)).astype(np.float32)
    path = syn.write_scene(tmp_path / "db_scene.tif", data, band_descriptions=("Sigma0_VV_db",))
    open_and_wait(qtbot, window, path)
    panel = window.pipeline_panel
    assert panel.quantity.findData("db") >= 0
    qtbot.wait(200)
    window.statusBar().showMessage("something else")        # later messages do not hide it
    assert panel.warning.isVisible() and "decibels" in panel.warning.text()
    panel.quantity.setCurrentIndex(panel.quantity.findData("db"))
    qtbot.waitUntil(lambda: window.renderer.pipeline.quantity == "db")
    assert not panel.warning.isVisible()
