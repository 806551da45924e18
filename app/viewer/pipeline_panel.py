"""Live controls of the preprocessing chain. Emits a new immutable Pipeline on every change."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout,
                               QLabel, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget)

from sarlang_core.errors import PipelineError
from sarlang_core.preprocess.pipeline import FilterSpec, Pipeline, StretchSpec

FILTER_LABELS = [
    ("none", "None (raw)"),
    ("refined-lee", "Refined Lee (SNAP, 7×7)"),
    ("lee", "Lee"),
    ("frost", "Frost"),
    ("gamma-map", "Gamma-MAP"),
    ("boxcar", "Boxcar (mean)"),
    ("median", "Median"),
]
USES = {  # which parameters each filter reads
    "none": set(), "refined-lee": {"snap"}, "lee": {"window", "looks"}, "frost": {"window", "damping"},
    "gamma-map": {"window", "looks"}, "boxcar": {"window"}, "median": {"window"},
}


class PipelinePanel(QWidget):
    pipelineChanged = Signal(object)   # Pipeline

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("PipelinePanel")
        self.setMinimumWidth(285)
        self._pipeline = Pipeline()
        self._quiet = False
        layout = QVBoxLayout(self)

        src = QGroupBox("Band")
        f = QFormLayout(src)
        self.band = QComboBox(objectName="band")
        self.quantity = QComboBox(objectName="quantity")
        for q, text in (("auto", "Auto (from metadata)"), ("intensity", "Intensity (|S|²)"), ("amplitude", "Amplitude (|S|)")):
            self.quantity.addItem(text, q)
        self.domain = QComboBox(objectName="domain")
        self.domain.addItem("Intensity", "intensity")
        self.domain.addItem("Amplitude", "amplitude")
        f.addRow("Band", self.band)
        f.addRow("Data holds", self.quantity)
        f.addRow("Filter on", self.domain)
        layout.addWidget(src)

        flt = QGroupBox("Speckle filter")
        f = QFormLayout(flt)
        self.filter = QComboBox(objectName="filter")
        for name, text in FILTER_LABELS:
            self.filter.addItem(text, name)
        self.window = QSpinBox(objectName="window", minimum=3, maximum=31, singleStep=2, value=7)
        self.window.setSuffix(" px")
        self.looks = QDoubleSpinBox(objectName="looks", minimum=0.1, maximum=100.0, singleStep=0.5, value=1.0, decimals=1)
        self.damping = QDoubleSpinBox(objectName="damping", minimum=0.0, maximum=20.0, singleStep=0.5, value=2.0, decimals=1)
        self.snap = QCheckBox("SNAP-exact quirks", objectName="snap")
        self.snap.setToolTip("Reproduce ESA SNAP exactly: 8-of-9 sub-area sort and black flat windows")
        f.addRow("Filter", self.filter)
        f.addRow("Window", self.window)
        f.addRow("Looks", self.looks)
        f.addRow("Damping", self.damping)
        f.addRow("", self.snap)
        layout.addWidget(flt)

        out = QGroupBox("Display")
        f = QFormLayout(out)
        self.db = QCheckBox("10·log10 (dB)", objectName="db", checked=True)
        self.stretch_on = QCheckBox("Linear percentile stretch", objectName="stretch_on", checked=True)
        self.low = QDoubleSpinBox(objectName="low", minimum=0.0, maximum=99.9, singleStep=0.5, value=2.0, decimals=1)
        self.high = QDoubleSpinBox(objectName="high", minimum=0.1, maximum=100.0, singleStep=0.5, value=98.0, decimals=1)
        self.low.setSuffix(" %")
        self.high.setSuffix(" %")
        self.low.setMaximumWidth(80)
        self.high.setMaximumWidth(80)
        self.limits_mode = QComboBox(objectName="limits_mode")
        self.limits_mode.addItem("Estimated (overview)", "estimate")
        self.limits_mode.addItem("Exact (full scene pass)", "exact")
        self.limits_label = QLabel("", objectName="limits_label", wordWrap=True)
        self.limits_label.setStyleSheet("color: #9aa3ad; font-size: 9pt;")
        f.addRow(self.db)
        f.addRow(self.stretch_on)
        self.low_slider = _percent_slider(self.low, "low_slider")
        self.high_slider = _percent_slider(self.high, "high_slider")
        f.addRow("Low", _row(self.low_slider, self.low))
        f.addRow("High", _row(self.high_slider, self.high))
        f.addRow("Limits", self.limits_mode)
        layout.addWidget(out)
        layout.addWidget(self.limits_label)

        self.reset = QPushButton("Reset to the paper's chain", objectName="reset")
        self.reset.setToolTip("Refined Lee, 10·log10, 2-98 % stretch on the current band")
        self.reset.clicked.connect(self._reset)
        layout.addWidget(self.reset)

        self.recipe = QLabel("", objectName="recipe", wordWrap=True)
        self.recipe.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.recipe.setStyleSheet("color: #9aa3ad; font-size: 9pt;")
        layout.addWidget(self.recipe)
        
        for w in (self.band, self.quantity, self.domain, self.filter, self.limits_mode):
            w.currentIndexChanged.connect(self._changed)
        for w in (self.window, self.looks, self.damping, self.low, self.high):
            w.valueChanged.connect(self._changed)
        for w in (self.snap, self.db, self.stretch_on):
            w.toggled.connect(self._changed)
        self._sync_enabled()

    # -- scene & pipeline -----------------------------------------------------------------
    def set_bands(self, bands) -> None:
        self._quiet = True
        self.band.clear()
        for b in bands:
            label = b.name if b.name else f"Band {b.index + 1}"
            if b.polarisation and b.polarisation not in label:
                label += f" ({b.polarisation})"
            self.band.addItem(label, b.index)
        self._quiet = False

    def pipeline(self) -> Pipeline:
        return self._pipeline

    def set_pipeline(self, p: Pipeline, band_index: int = 0) -> None:
        """Show ``p`` in the controls without emitting."""
        self._quiet = True
        self._pipeline = p
        self.band.setCurrentIndex(max(0, self.band.findData(band_index)))
        self.quantity.setCurrentIndex(max(0, self.quantity.findData(p.quantity)))
        self.domain.setCurrentIndex(max(0, self.domain.findData(p.domain)))
        self.filter.setCurrentIndex(max(0, self.filter.findData(p.filter.name)))
        self.window.setValue(p.filter.window)
        self.looks.setValue(p.filter.looks)
        self.damping.setValue(p.filter.damping)
        self.snap.setChecked(p.filter.snap_exact)
        self.db.setChecked(p.db)
        self.stretch_on.setChecked(p.stretch is not None)
        s = p.stretch or StretchSpec()
        self.low.setValue(s.low)
        self.high.setValue(s.high)
        self.limits_mode.setCurrentIndex(max(0, self.limits_mode.findData(s.limits)))
        self._quiet = False
        self._sync_enabled()
        self.recipe.setText(p.describe())

    def set_limits_text(self, text: str) -> None:
        self.limits_label.setText(text)

    def _reset(self) -> None:
        band = int(self.band.currentData() or 0)
        self.set_pipeline(Pipeline(band=band), band)
        self.pipelineChanged.emit(self._pipeline)

    def _read(self) -> Pipeline:
        window = self.window.value() | 1  # keep it odd
        stretch = None
        if self.stretch_on.isChecked():
            stretch = StretchSpec(self.low.value(), self.high.value(), self.limits_mode.currentData())
        return Pipeline(
            band=int(self.band.currentData() or 0), quantity=self.quantity.currentData(),
            domain=self.domain.currentData(),
            filter=FilterSpec(self.filter.currentData(), window, self.looks.value(), self.damping.value(),
                              self.snap.isChecked()),
            db=self.db.isChecked(), db_floor=self._pipeline.db_floor, stretch=stretch)

    def _changed(self, *_):
        self._sync_enabled()
        if self._quiet:
            return
        try:
            p = self._read()
        except PipelineError as exc:   # e.g. low >= high while typing: say so, keep the last good one
            self.recipe.setText(f"⚠ {exc}")
            return
        if p != self._pipeline:
            self._pipeline = p
            self.recipe.setText(p.describe())
            self.pipelineChanged.emit(p)

    def _sync_enabled(self) -> None:
        uses = USES.get(self.filter.currentData(), set())
        self.window.setEnabled("window" in uses)
        self.looks.setEnabled("looks" in uses)
        self.damping.setEnabled("damping" in uses)
        self.snap.setEnabled("snap" in uses)
        on = self.stretch_on.isChecked()
        for w in (self.low, self.high, self.low_slider, self.high_slider, self.limits_mode):
            w.setEnabled(on)


def _percent_slider(spin: QDoubleSpinBox, name: str) -> QSlider:
    """A slider in 0.1 % steps kept in step with ``spin`` (the spin box holds the value)."""
    slider = QSlider(Qt.Orientation.Horizontal, objectName=name)
    slider.setRange(int(spin.minimum() * 10), int(spin.maximum() * 10))
    slider.setValue(int(round(spin.value() * 10)))
    slider.valueChanged.connect(lambda v: spin.setValue(v / 10.0))
    spin.valueChanged.connect(lambda v: slider.setValue(int(round(v * 10))))
    return slider


def _row(*widgets) -> QWidget:
    box = QWidget()
    lay = QHBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        lay.addWidget(w)
    return box
