"""Live controls of the preprocessing chain. Emits a new immutable Pipeline on every change."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.form_widgets import param_combo, param_spin
from sarlang_core.errors import PipelineError
from sarlang_core.preprocess.pipeline import (
    DAMPING,
    DB,
    DOMAIN,
    EXACT_SOURCE,
    FILTER_LABELS,
    FILTER_NAME,
    FILTER_USES,
    HIGH,
    LIMITS,
    LOOKS,
    LOW,
    QUANTITY,
    SNAP_EXACT,
    WINDOW,
    FilterSpec,
    Pipeline,
    StretchSpec,
)

# Presentation only: the order filters are offered in and the words shown for each choice.
# Choices, bounds, steps and help come from the recipe's field metadata (pipeline.py).
FILTER_ORDER = ("none", "refined-lee", "lee", "frost", "gamma-map", "boxcar", "median")
CHOICE_TEXT = {
    "quantity": {"auto": "Auto (from metadata)", "intensity": "Intensity (|S|²)", "amplitude": "Amplitude (|S|)",
                 "db": "Decibels (10·log10 |S|²)"},
    "domain": {"intensity": "Intensity", "amplitude": "Amplitude"},
    "limits": {"estimate": "Estimated (overview)", "exact": "Exact (full scene pass)"},
}
ESTIMATE_WAS_EXACT = "the estimate read every pixel: exact"   # a scene that is its own overview


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
        self.band.setToolTip(Pipeline.__dataclass_fields__["band"].metadata["help"])
        self.quantity = param_combo(QUANTITY, "quantity", CHOICE_TEXT["quantity"])
        self.domain = param_combo(DOMAIN, "domain", CHOICE_TEXT["domain"])
        f.addRow("Band", self.band)
        f.addRow("Data holds", self.quantity)
        f.addRow("Filter on", self.domain)
        # Stays while it applies (a status bar message would be gone in seconds): e.g. dB input
        # taken as linear, which takes the log twice.
        self.warning = QLabel("", objectName="chain_warning", wordWrap=True, visible=False)
        self.warning.setStyleSheet("color: #e0a040; font-size: 9pt;")
        f.addRow(self.warning)
        layout.addWidget(src)

        flt = QGroupBox("Speckle filter")
        f = QFormLayout(flt)
        defaults = FilterSpec()
        self.filter = QComboBox(objectName="filter")
        for name in FILTER_ORDER + tuple(n for n in FILTER_NAME.choices if n not in FILTER_ORDER):
            self.filter.addItem(FILTER_LABELS[name], name)
        self.filter.setToolTip(FILTER_NAME.help)
        self.window = param_spin(WINDOW, "window", defaults.window)
        self.looks = param_spin(LOOKS, "looks", defaults.looks)
        self.damping = param_spin(DAMPING, "damping", defaults.damping)
        self.snap = QCheckBox(SNAP_EXACT.label, objectName="snap")
        self.snap.setToolTip(SNAP_EXACT.help)
        f.addRow("Filter", self.filter)
        f.addRow("Window", self.window)
        f.addRow("Looks", self.looks)
        f.addRow("Damping", self.damping)
        f.addRow("", self.snap)
        layout.addWidget(flt)

        out = QGroupBox("Display")
        f = QFormLayout(out)
        stretch = StretchSpec()
        self.db = QCheckBox("10·log10 (dB)", objectName="db", checked=Pipeline().db)
        self.db.setToolTip(DB.help)
        self.stretch_on = QCheckBox("Linear percentile stretch", objectName="stretch_on", checked=True)
        self.low = param_spin(LOW, "low", stretch.low)
        self.high = param_spin(HIGH, "high", stretch.high)
        self.low.setMaximumWidth(80)
        self.high.setMaximumWidth(80)
        self.limits_mode = param_combo(LIMITS, "limits_mode", CHOICE_TEXT["limits"])
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
        self.set_pipeline(self._pipeline)  # the controls show the recipe from the start

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
        self._show_recipe()

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
        self._show_recipe()

    def _show_recipe(self) -> None:
        """The recipe in words, naming the band as the band box does."""
        self.recipe.setText(self._pipeline.describe(self.band.currentText() or None))

    def set_warning(self, text: str) -> None:
        """A warning about the recipe on this scene, shown until it no longer applies ("" hides it)."""
        self.warning.setText(f"⚠ {text}" if text else "")
        self.warning.setToolTip(text)
        self.warning.setVisible(bool(text))

    def set_limits_text(self, text: str) -> None:
        """Where the stretch limits came from. On a scene small enough to be its own overview the
        estimate reads every pixel and is exact: say so, or "Estimated" and "exact" disagree."""
        if self.limits_mode.currentData() == "estimate" and EXACT_SOURCE in text:
            text = text.replace(EXACT_SOURCE, ESTIMATE_WAS_EXACT)
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
            self._show_recipe()
            self.pipelineChanged.emit(p)

    def _sync_enabled(self) -> None:
        uses = FILTER_USES.get(self.filter.currentData(), ())
        self.window.setEnabled("window" in uses)
        self.looks.setEnabled("looks" in uses)
        self.damping.setEnabled("damping" in uses)
        self.snap.setEnabled("snap_exact" in uses)
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
