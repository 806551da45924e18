"""The fine-tuning form: one control per ``TrainConfig`` field, built from its ``Param`` (range,
step, decimals, choices, help as the tooltip), grouped as a person reads them.

``TrainFormPanel.config()`` gives the validated ``TrainConfig`` (or raises ``TrainError`` with a
message a person can act on); ``set_config`` shows one (a run's, or the last one used).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Dict, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app import settings as app_settings
from app import workers
from app.benchmarks.run_form import slug
from app.form_widgets import param_tooltip, param_widget, path_row, set_widget_value, widget_value
from sarlang_core.errors import SarlangError, TrainError
from sarlang_core.services import training
from sarlang_core.services.models import registered_models

BROWSE = "\x00browse"
PIPE_OWN, PIPE_PAPER, PIPE_NONE, PIPE_FILE = "", "paper", "none", "\x00file"
DATASET_FILTER = "Training data (*.db *.json *.jsonl *.csv);;All files (*)"
SETTING = "training/form"

# Presentation only: which box a field sits in, in what order, and the words for it. Bounds,
# steps, choices and help come from the fields' Params (sarlang_core/train/config.py).
GROUPS = (
    ("Data", ("split", "statuses", "eval_split", "cutoff", "overlong", "image_max_pixels")),
    ("Schedule", ("epochs", "max_steps", "learning_rate", "scheduler", "warmup_ratio", "weight_decay",
                  "max_grad_norm")),
    ("LoRA", ("lora_r", "lora_alpha", "lora_dropout", "train_vision")),
    ("Batch and memory", ("batch_size", "grad_accum", "precision", "gradient_checkpointing", "deepspeed")),
    ("Checkpoints", ("save_every", "keep_checkpoints", "eval_every", "seed")),
)
LABELS = {"split": "Train split", "statuses": "Statuses", "eval_split": "Eval split", "cutoff": "Cutoff",
          "overlong": "Too long", "image_max_pixels": "Max pixels", "epochs": "Epochs", "max_steps": "Max steps",
          "learning_rate": "Learning rate", "scheduler": "Scheduler", "warmup_ratio": "Warm-up",
          "weight_decay": "Weight decay", "max_grad_norm": "Clip grad norm", "lora_r": "Rank", "lora_alpha": "Alpha",
          "lora_dropout": "Dropout", "train_vision": "LoRA on the vision tower too", "batch_size": "Batch size",
          "grad_accum": "Accumulation", "precision": "Precision",
          "gradient_checkpointing": "Gradient checkpointing", "deepspeed": "DeepSpeed",
          "save_every": "Save every", "keep_checkpoints": "Keep", "eval_every": "Eval every", "seed": "Seed"}
ZERO_TEXT = {"max_steps": "epochs decide", "eval_every": "never"}
SUFFIX = {"cutoff": " tokens", "save_every": " steps", "eval_every": " steps", "keep_checkpoints": " checkpoints",
          "image_max_pixels": " px"}
CHOICE_TEXT = {"overlong": {"truncate": "truncate the answer", "skip": "skip the sample"},
               "precision": {"auto": "auto (bf16 / fp16 on GPU, fp32 on CPU)"},
               "deepspeed": {"none": "off"}}


class TrainFormPanel(QScrollArea):
    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("TrainFormPanel")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.params = training.config_params()
        self.fields: Dict[str, QWidget] = {}
        self._folders: list = []          # model folders the user browsed to
        self._models: list = []           # (label, name) registered
        body = QWidget()
        lay = self._row = QHBoxLayout(body)
        lay.setContentsMargins(4, 0, 6, 6)
        self._cols = [QVBoxLayout(), QVBoxLayout()]
        for col in self._cols:
            lay.addLayout(col, 1)
        self.boxes = [self._run_box()] + [self._group(title, names) for title, names in GROUPS]
        self.columns = 0
        self._arrange(1)
        self.setWidget(body)
        labels = body.findChildren(QLabel)       # one label column for every box: the fields line up
        width = max(label.sizeHint().width() for label in labels)
        for label in labels:
            label.setMinimumWidth(width)
            label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        for combo in body.findChildren(QComboBox):     # long item texts must not widen the form
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        self.column_width = body.minimumSizeHint().width()
        self.setMinimumWidth(self.column_width + self.verticalScrollBar().sizeHint().width() + 4)
        self._render_models()
        self._pipeline_changed()
        self._restore()
        workers.submit("io", "train-registry", _registry_choices, on_result=lambda _r, m: self.set_models(m))

    # -- building -----------------------------------------------------------------------------------
    @staticmethod
    def _form(title: str):
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setContentsMargins(8, 6, 8, 6)
        form.setVerticalSpacing(5)
        return box, form

    def _run_box(self) -> QGroupBox:
        box, form = self._form("Run")
        p = self.params
        self.name = QLineEdit(datetime.now().strftime("lora-%Y%m%d-%H%M"), objectName="run_name")
        self.name.setToolTip("The run folder is named after it, inside the runs folder")
        self.model = QComboBox(objectName="model")
        self.model.setToolTip(p["model"].help)
        self.model.activated.connect(self._model_activated)
        self.dataset = QLineEdit(objectName="dataset", placeholderText="store .db, export folder, JSON or CSV")
        self.dataset.setToolTip(p["dataset"].help)
        self.images = QLineEdit(objectName="images", placeholderText="beside the dataset")
        self.images.setToolTip(p["images"].help)
        self.pipeline = QComboBox(objectName="pipeline")
        self.pipeline.addItem("The project's own (a store's Pipeline)", PIPE_OWN)
        self.pipeline.addItem("The paper's chain (refined Lee, dB, stretch)", PIPE_PAPER)
        self.pipeline.addItem("None: images as stored", PIPE_NONE)
        self.pipeline.addItem("From a pipeline JSON file…", PIPE_FILE)
        self.pipeline.setToolTip("How images are preprocessed before training. The project's own: a curation "
                                 "store's Pipeline; an export or SARLANG-1M JSON/CSV is used as stored (its "
                                 "images are preprocessed or 8-bit already)")
        self.pipeline.currentIndexChanged.connect(self._pipeline_changed)
        self.pipeline_file = QLineEdit(objectName="pipeline_file", placeholderText="pipeline.json")
        form.addRow("Name", self.name)
        form.addRow("Model", self.model)
        form.addRow("Dataset", path_row(self.dataset, self._pick_dataset_file, (
            ("Store, JSON or CSV file…", self._pick_dataset_file),
            ("Export folder (dataset_info.json)…", self._pick_dataset_folder))))
        form.addRow("Images", path_row(self.images, lambda: self._pick_dir(self.images, "Image root")))
        form.addRow("Preprocess", self.pipeline)
        self._file_row = path_row(self.pipeline_file, self._pick_pipeline)
        form.addRow("", self._file_row)
        self._run_form = form
        return box

    def _group(self, title: str, names) -> QGroupBox:
        box, form = self._form(title)
        for name in names:
            param = self.params[name]
            default = training.TrainConfig.__dataclass_fields__[name].default
            if name == "statuses":
                w = self._statuses(param)
            elif name == "eval_split":
                w = param_widget(param, name, None)
                w.insertItem(0, "none (no evaluation loss)", "")
                w.setCurrentIndex(0)
            else:
                w = param_widget(param, name, default, CHOICE_TEXT.get(name), text=LABELS[name])
            if isinstance(w, QSpinBox) and name in ZERO_TEXT:
                w.setSpecialValueText(ZERO_TEXT[name])
            if name in SUFFIX and hasattr(w, "setSuffix"):
                w.setSuffix(SUFFIX[name])
            self.fields[name] = w
            if isinstance(w, QCheckBox):
                form.addRow("", w)
            else:
                form.addRow(LABELS[name], w)
                form.labelForField(w).setToolTip(param_tooltip(param))
        return box

    def _statuses(self, param) -> QWidget:
        w = QWidget(objectName="statuses")
        lay = QGridLayout(w)          # two columns: one row of four was wider than the form
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setVerticalSpacing(2)
        self.status_checks = {}
        default = training.TrainConfig.__dataclass_fields__["statuses"].default
        for i, s in enumerate(param.choices):
            cb = QCheckBox(s, objectName=f"status_{s}", checked=s in default)
            cb.setToolTip(param.help)
            lay.addWidget(cb, i // 2, i % 2)
            self.status_checks[s] = cb
        return w

    def _arrange(self, columns: int) -> None:
        """One column of boxes, or two where the form is wide enough (a 1080p screen: no scrolling)."""
        if columns == self.columns:
            return
        self.columns = columns
        for col in self._cols:
            while col.count():
                col.takeAt(0)
        first = len(self.boxes) if columns == 1 else 3
        for i, box in enumerate(self.boxes):
            self._cols[0 if i < first else 1].addWidget(box)
        for col in self._cols:
            col.addStretch(1)
        self._row.setStretch(1, columns - 1)      # an empty second column takes no room

    def two_columns_width(self) -> int:
        return 2 * self.column_width + self.verticalScrollBar().sizeHint().width() + 16

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._arrange(2 if self.width() >= self.two_columns_width() else 1)

    # -- models -------------------------------------------------------------------------------------
    def set_models(self, models) -> None:
        """``models``: (label, registry name) pairs; folders browsed to stay listed after them."""
        self._models = list(models)
        self._render_models()

    def _render_models(self, select: Optional[str] = None) -> None:
        key = select if select is not None else self.model.currentData()
        self.model.blockSignals(True)
        self.model.clear()
        for label, name in self._models:
            self.model.addItem(label, name)
        for folder in self._folders:
            self.model.addItem(f"{folder.rstrip('/').rsplit('/', 1)[-1]}  (folder)", folder)
            self.model.setItemData(self.model.count() - 1, folder, Qt.ItemDataRole.ToolTipRole)
        if not self.model.count():
            self.model.addItem("Choose a model folder…", "")
        self.model.addItem("Browse folder…", BROWSE)
        i = self.model.findData(key) if key not in (None, BROWSE) else -1
        self.model.setCurrentIndex(max(i, 0))
        self._last_model = self.model.currentData()
        self.model.blockSignals(False)

    def _model_activated(self, _index: int) -> None:
        if self.model.currentData() != BROWSE and self.model.currentData() != "":
            self._last_model = self.model.currentData()
            self.changed.emit()
            return
        folder = QFileDialog.getExistingDirectory(self, "Base model folder (config.json)")
        self.set_model(folder or self._last_model or "")

    def set_model(self, model: str) -> None:
        """Select ``model`` (a registry name or a folder; a new folder is added to the list)."""
        if model and self.model.findData(model) < 0:
            self._folders.append(model)
        self._render_models(select=model)
        self.changed.emit()

    # -- paths --------------------------------------------------------------------------------------
    def _pick_dataset_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Training data", self.dataset.text(), DATASET_FILTER)
        if path:
            self.dataset.setText(path)

    def _pick_dataset_folder(self) -> None:
        self._pick_dir(self.dataset, "Dataset export folder (with dataset_info.json)")

    def _pick_dir(self, edit: QLineEdit, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title, edit.text())
        if folder:
            edit.setText(folder)

    def _pick_pipeline(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Pipeline JSON", self.pipeline_file.text(), "Pipeline (*.json)")
        if path:
            self.pipeline_file.setText(path)

    def _pipeline_changed(self) -> None:
        self._run_form.setRowVisible(self._file_row, self.pipeline.currentData() == PIPE_FILE)

    def pipeline_choice(self) -> Optional[str]:
        """What ``services.training.pipeline_for`` takes: None (the project's own), "paper", "none" or a file."""
        choice = self.pipeline.currentData()
        if choice == PIPE_FILE:
            path = self.pipeline_file.text().strip()
            if not path:
                raise TrainError("choose the pipeline JSON file, or another preprocessing")
            return path
        return choice or None

    def set_pipeline_choice(self, choice: Optional[str]) -> None:
        i = self.pipeline.findData(choice or PIPE_OWN)
        if i < 0:
            self.pipeline_file.setText(str(choice))
            i = self.pipeline.findData(PIPE_FILE)
        self.pipeline.setCurrentIndex(i)

    # -- the config ---------------------------------------------------------------------------------
    def config(self) -> "training.TrainConfig":
        """The run as the form describes it; TrainError says what to fix."""
        values: Dict[str, Any] = {name: widget_value(w) for name, w in self.fields.items() if name != "statuses"}
        values["statuses"] = tuple(s for s, cb in self.status_checks.items() if cb.isChecked())
        values["model"] = self.model.currentData() if self.model.currentData() != BROWSE else ""
        values["dataset"] = self.dataset.text().strip()
        values["images"] = self.images.text().strip() or None
        values["eval_split"] = values["eval_split"] or None
        return training.TrainConfig(**values)

    def set_config(self, config: "training.TrainConfig") -> None:
        for name, w in self.fields.items():
            if name != "statuses":
                set_widget_value(w, getattr(config, name) if name != "eval_split" else config.eval_split or "")
        for s, cb in self.status_checks.items():
            cb.setChecked(s in config.statuses)
        self.set_model(config.model)
        self.dataset.setText(config.dataset)
        self.images.setText(config.images or "")

    def focus_problem(self, message: str) -> None:
        """Put the cursor where ``message`` (a TrainError) says the problem is."""
        for word, widget in (("dataset", self.dataset), ("base model", self.model), ("pipeline", self.pipeline_file)):
            if word in message:
                widget.setFocus()
                return

    def folder_name(self) -> str:
        return slug(self.name.text())

    def remember(self, config: "training.TrainConfig") -> None:
        s = app_settings.settings()
        s.setValue(SETTING, json.dumps({"config": config.to_dict(), "pipeline": self.pipeline_choice()}))
        s.sync()

    def _restore(self) -> None:
        raw = app_settings.settings().value(SETTING)
        if not raw:
            return
        try:
            saved = json.loads(str(raw))
            self.set_config(training.TrainConfig.from_dict(saved["config"]))
            self.set_pipeline_choice(saved.get("pipeline"))
        except (ValueError, KeyError, TypeError, SarlangError):
            return      # an old or damaged entry: the defaults stay


def _registry_choices():
    """(label, name) of the registered models (worker side: reads the registry file)."""
    try:
        return registered_models()
    except SarlangError:
        return []
