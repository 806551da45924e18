"""Where an answer's words came from: the controls, legend and word list of the per-word maps."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sarlang_core.services.explain import COLORMAPS, METHOD_CHOICES

from .legend import PEAK_ROLE, RELATIVE_ROLE, ColourBar, WordBarDelegate

WORD_ROLE = Qt.ItemDataRole.UserRole
HINT = "Ask a local model about the scene, then click a word of its answer: its map shows on the scene."
NO_ADAPTER_TIP = "Load a model with a LoRA adapter to compare the base model's maps with the fine-tuned model's"
METHOD_TIPS = {
    "gradcam": "Grad-CAM on the visual tokens the language model reads (one map cell per token)",
    "gradxinput": "Gradient × input on the pixels, through the vision tower (twice the grid resolution; slower)",
    "attention": "Attention paid to each visual token by the positions that predict the word (no gradient)",
}


class ExplainPanel(QWidget):
    methodChanged = Signal(str)
    adapterChanged = Signal(bool)          # True: the fine-tuned model (adapter on)
    styleChanged = Signal()                # colormap, opacity or threshold
    wordSelected = Signal(int)             # a word index of the answer (WordSpan / WordMap numbering)
    cancelRequested = Signal()
    clearRequested = Signal()
    exportPngRequested = Signal(str)
    exportGeotiffRequested = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("ExplainPanel")
        # the app's style sheet leaves a disabled tool button's text bright: grey it here
        self.setStyleSheet("QToolButton:disabled { color: #5a616b; }"
                           "QToolButton:checked:disabled { background: #2c3a4a; color: #8a939d; }")
        lay = QVBoxLayout(self)
        lay.setSpacing(4)
        self.message = QLabel(HINT, objectName="explain_message", wordWrap=True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.message)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.method = QComboBox(objectName="explain_method")
        for name, label in METHOD_CHOICES:
            self.method.addItem(label, name)
            self.method.setItemData(self.method.count() - 1, METHOD_TIPS.get(name, label),
                                    Qt.ItemDataRole.ToolTipRole)
        self.method.setToolTip("How a word's map is computed; a change recomputes the answer's maps (or takes "
                               "them from the cache)")
        self.method.currentIndexChanged.connect(lambda _i: self.methodChanged.emit(self.method_name()))
        form.addRow("Method", self.method)

        row = QHBoxLayout()
        row.setSpacing(0)
        self.base_button = QToolButton(objectName="explain_base", text="Base model", checkable=True)
        self.tuned_button = QToolButton(objectName="explain_tuned", text="Fine-tuned", checkable=True, checked=True)
        self.model_group = QButtonGroup(self)
        for b in (self.base_button, self.tuned_button):
            self.model_group.addButton(b)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            row.addWidget(b)
        row.addStretch(1)
        self.model_group.setExclusive(True)
        self.tuned_button.toggled.connect(lambda on: self.adapterChanged.emit(on))
        form.addRow("Model", row)
        self.set_adapter_available(False)

        self.colormap = QComboBox(objectName="explain_colormap")
        for name in COLORMAPS:
            self.colormap.addItem(name, name)
        self.colormap.currentIndexChanged.connect(lambda _i: self._style_changed())
        form.addRow("Colours", self.colormap)
        self.opacity, self.opacity_label = self._slider("explain_opacity", 60, "How opaque the map is over the scene")
        form.addRow("Opacity", self._with_value(self.opacity, self.opacity_label))
        self.threshold, self.threshold_label = self._slider(
            "explain_threshold", 20, "Map values below this fraction of the word's peak are not drawn")
        form.addRow("Threshold", self._with_value(self.threshold, self.threshold_label))
        lay.addLayout(form)

        box = QGroupBox("Legend", objectName="explain_legend")
        bl = QVBoxLayout(box)
        bl.setSpacing(2)
        self.legend_title = QLabel("No map shown", objectName="legend_title", wordWrap=True)
        self.legend_title.setStyleSheet("font-weight: bold; color: #ffd28a;")
        self.colour_bar = ColourBar()
        self.legend_scale = QLabel("score relative to the word's peak", objectName="legend_scale")
        self.legend_scale.setStyleSheet("color: #9aa3ad; font-size: 8pt;")
        self.legend_scale.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.legend_info = QLabel("", objectName="legend_info", wordWrap=True)
        self.legend_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.legend_info.setStyleSheet("font-size: 9pt;")
        for w in (self.legend_title, self.colour_bar, self.legend_scale, self.legend_info):
            bl.addWidget(w)
        lay.addWidget(box)

        self.words_title = QLabel("Words", objectName="words_title")
        self.words_title.setStyleSheet("color: #8fb8e6;")
        lay.addWidget(self.words_title)
        self.answer = QTextBrowser(objectName="explain_answer")
        self.answer.setOpenLinks(False)
        self.answer.setMaximumHeight(54)
        self.answer.setToolTip("The answer explained: click a word to show its map")
        self.answer.anchorClicked.connect(self._answer_link)
        self.answer.hide()
        lay.addWidget(self.answer)
        self.words = QListWidget(objectName="explain_words")
        self.words.setItemDelegate(WordBarDelegate(self.words))
        self.words.setToolTip("The answer's content words, each with its map's peak (bar: relative to the "
                              "highest). Click or use ↑ ↓ to show a word's map.")
        self.words.setMinimumHeight(72)
        # its hint (192 px) would count in the panel's height for its width and scroll a 768-px screen
        policy = self.words.sizePolicy()
        policy.setVerticalPolicy(QSizePolicy.Policy.Ignored)
        self.words.setSizePolicy(policy)
        self.words.currentItemChanged.connect(self._word_changed)
        lay.addWidget(self.words, 1)

        row = QHBoxLayout()
        self.progress = QProgressBar(objectName="explain_progress", maximum=1000)
        self.cancel_button = QPushButton("Cancel", objectName="explain_cancel")
        self.cancel_button.setToolTip("Stop computing the maps (the chat and the scene stay as they are)")
        self.cancel_button.clicked.connect(self.cancelRequested)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)
        self.set_busy(False)

        row = QHBoxLayout()
        self.png_button = QPushButton("Export PNG…", objectName="explain_png")
        self.png_button.setToolTip("The image the model saw with this word's map and a legend")
        self.png_button.clicked.connect(self._export_png)
        self.tif_button = QPushButton("Export GeoTIFF…", objectName="explain_geotiff")
        self.tif_button.setToolTip("This word's map as a float32 GeoTIFF over the scene (its CRS; nodata where "
                                   "the model did not look)")
        self.tif_button.clicked.connect(self._export_geotiff)
        self.clear_button = QPushButton("Clear", objectName="explain_clear")
        self.clear_button.setToolTip("Remove the map from the scene")
        self.clear_button.clicked.connect(self.clearRequested)
        for b in (self.png_button, self.tif_button, self.clear_button):
            row.addWidget(b)
        lay.addLayout(row)
        self._filling = False
        self.file_stem = "word_map"
        self.set_map_shown(False)
        self._style_changed()

    # -- construction ---------------------------------------------------------------------------
    def _slider(self, name: str, value: int, tip: str):
        s = QSlider(Qt.Orientation.Horizontal, objectName=name, minimum=0, maximum=100, value=value)
        s.setToolTip(tip)
        s.setPageStep(10)
        label = QLabel(objectName=f"{name}_value", minimumWidth=34)
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        s.valueChanged.connect(lambda _v: self._style_changed())
        return s, label

    @staticmethod
    def _with_value(slider, label) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(slider, 1)
        row.addWidget(label)
        return row

    # -- what the controls say ------------------------------------------------------------------
    def method_name(self) -> str:
        return self.method.currentData()

    def method_label(self) -> str:
        return self.method.currentText()

    def fine_tuned(self) -> bool:
        return self.tuned_button.isChecked()

    def map_style(self) -> dict:
        """The keywords of colorize / save_overlay_png."""
        return {"colormap": self.colormap.currentData(), "opacity": self.opacity.value() / 100.0,
                "threshold": self.threshold.value() / 100.0}

    def _style_changed(self) -> None:
        st = self.map_style()
        self.opacity_label.setText(f"{self.opacity.value()} %")
        self.threshold_label.setText(f"{st['threshold']:.2f}")
        self.colour_bar.set_style(st["colormap"], st["threshold"])
        self.styleChanged.emit()

    # -- state ----------------------------------------------------------------------------------
    def set_adapter_available(self, available: bool) -> None:
        for b in (self.base_button, self.tuned_button):
            b.setEnabled(available)
            b.setToolTip("Maps of the base model (adapter off) or of the fine-tuned model (adapter on), for the "
                         "same answer" if available else NO_ADAPTER_TIP)
        if not available:
            self.tuned_button.blockSignals(True)
            self.tuned_button.setChecked(True)
            self.tuned_button.blockSignals(False)

    def set_message(self, text: str, warning: bool = False) -> None:
        self.message.setText(("⚠ " if warning else "") + text)
        self.message.setStyleSheet("color: #ffb000;" if warning else "")

    def set_busy(self, busy: bool, text: str = "") -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setValue(0)
            self.progress.setFormat(text or "computing the maps…")

    def set_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        self.progress.setFormat(f"{text}  %p%" if text else "%p%")

    def set_map_shown(self, shown: bool) -> None:
        for b in (self.png_button, self.tif_button, self.clear_button):
            b.setEnabled(shown)

    def set_legend(self, title: str, info: str, stem: str = "word_map") -> None:
        """The legend's title and lines; ``stem``: the export dialogs' file name."""
        self.legend_title.setText(title)
        self.legend_info.setText(info)
        self.file_stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem)[:80] or "word_map"

    def set_words(self, title: str, entries) -> None:
        """``entries``: (word index, text, raw peak, relative peak) of the words to list."""
        self._filling = True
        try:
            self.words.clear()
            self.words_title.setText(title)
            for index, text, peak, rel in entries:
                item = QListWidgetItem(text)
                item.setData(WORD_ROLE, index)
                item.setData(PEAK_ROLE, peak)
                item.setData(RELATIVE_ROLE, rel)
                item.setToolTip(f"word {index + 1}: '{text}' · peak {peak:.4g} ({rel:.0%} of the answer's highest)")
                self.words.addItem(item)
        finally:
            self._filling = False

    def select_word(self, index: int) -> None:
        """Select word ``index`` in the list (without asking for it again); none if it is not listed."""
        self._filling = True
        try:
            for row in range(self.words.count()):
                if self.words.item(row).data(WORD_ROLE) == index:
                    self.words.setCurrentRow(row)
                    return
            self.words.setCurrentRow(-1)
        finally:
            self._filling = False

    def set_answer(self, fragment: str) -> None:
        """The answer as HTML with links 'word:<index>' ("" hides it); the scroll position is kept."""
        bar = self.answer.verticalScrollBar()
        at = bar.value()
        self.answer.setHtml(fragment)
        bar.setValue(at)
        self.answer.setVisible(bool(fragment))

    def _answer_link(self, url) -> None:
        text = url.toString()
        if text.startswith("word:") and text[5:].isdigit():
            self.wordSelected.emit(int(text[5:]))

    def clear(self, text: str = HINT) -> None:
        self.set_answer("")
        self.set_words("Words", [])
        self.set_legend("No map shown", "")
        self.set_map_shown(False)
        self.set_busy(False)
        self.set_message(text)

    def _word_changed(self, current, _previous) -> None:
        if current is not None and not self._filling:
            self.wordSelected.emit(int(current.data(WORD_ROLE)))

    # -- export ---------------------------------------------------------------------------------
    def _export_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export map as PNG", f"{self.file_stem}.png", "PNG (*.png)")
        if path:
            self.exportPngRequested.emit(path)

    def _export_geotiff(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export map as GeoTIFF", f"{self.file_stem}.tif",
                                              "GeoTIFF (*.tif *.tiff)")
        if path:
            self.exportGeotiffRequested.emit(path)
