"""The "New run" form of the benchmark window: model, dataset, preprocessing, judge, generation.

``RunFormPanel.config()`` gives the validated ``RunConfig`` (or raises ``BenchmarkError`` with a
message a person can act on); the window hands it to ``services.benchmarks.run_command``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Callable, List, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app import settings as app_settings
from app import workers
from app.form_widgets import path_row
from sarlang_core.evaluate.run_config import (
    CAPTION_TYPES,
    VQA_TYPES,
    BackendSpec,
    BenchmarkError,
    DatasetSpec,
    JudgeSpec,
    RunConfig,
)
from sarlang_core.services.benchmarks import redact_url
from sarlang_core.services.models import GenerationConfig, registered_models

FOLDER, ENDPOINT = "folder", "endpoint"
PRE_CURRENT, PRE_PAPER, PRE_NONE = "current", "paper", "none"
DATASET_FILTER = "Datasets (*.db *.json *.jsonl *.csv);;All files (*)"
REMEMBERED = ("dataset", "endpoint", "served_model", "judge_endpoint", "judge_model")


def slug(name: str) -> str:
    """A folder name for a run name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-.") or "run"


class RunFormPanel(QScrollArea):
    changed = Signal()

    def __init__(self, pipeline_source: Optional[Callable[[], object]] = None, parent=None):
        super().__init__(parent)
        self.setObjectName("RunFormPanel")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.pipeline_source = pipeline_source
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.setContentsMargins(6, 0, 6, 6)
        lay.addWidget(self._run_box())
        lay.addWidget(self._model_box())
        lay.addWidget(self._dataset_box())
        lay.addWidget(self._judge_box())
        lay.addWidget(self._generation_box())
        lay.addStretch(1)
        self.setWidget(body)
        self.setMinimumWidth(360)
        for combo in body.findChildren(QComboBox):     # long item texts must not widen the form
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
        self._task_changed()
        self._model_changed()
        self._judge_changed()
        self._restore()
        workers.submit("io", "registry", _registry_choices, on_result=self._models_loaded)

    # -- building -----------------------------------------------------------------------------------
    @staticmethod
    def _form(title: str):
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        return box, form

    def _run_box(self) -> QGroupBox:
        box, form = self._form("Run")
        self.name = QLineEdit(datetime.now().strftime("run-%Y%m%d-%H%M"), objectName="run_name")
        self.name.setToolTip("Shown in reports; the run folder is named after it inside the runs folder")
        self.task = QComboBox(objectName="task")
        self.task.addItem("VQA (accuracy, judged)", "vqa")
        self.task.addItem("Captions (BLEU, ROUGE-L, CIDEr)", "caption")
        self.task.currentIndexChanged.connect(self._task_changed)
        form.addRow("Name", self.name)
        form.addRow("Task", self.task)
        return box

    def _model_box(self) -> QGroupBox:
        box, form = self._form("Model")
        self.model = QComboBox(objectName="model_source")
        self._model_picked = False
        self.set_models([])
        self.model.currentIndexChanged.connect(self._model_changed)
        self.model.currentIndexChanged.connect(self._model_activated)   # set_models blocks signals
        self.model.activated.connect(self._model_activated)             # the user re-picked the same one
        self.model_folder = QLineEdit(objectName="model_folder", placeholderText="folder with config.json")
        self.adapter = QLineEdit(objectName="adapter", placeholderText="optional LoRA adapter folder")
        self.endpoint = QLineEdit(objectName="endpoint", placeholderText="http://gpu-host:8000/v1")
        self.served_model = QLineEdit(objectName="served_model", placeholderText="name the server serves")
        self.label = QLineEdit(objectName="label", placeholderText="as in the paper, e.g. QWEN2.5-VL")
        self.param = QLineEdit(objectName="param", placeholderText="e.g. 3B", maximumWidth=80)
        form.addRow("Source", self.model)
        self._folder_row = path_row(self.model_folder, lambda: self._pick_dir(self.model_folder, "Model folder"))
        self._adapter_row = path_row(self.adapter, lambda: self._pick_dir(self.adapter, "LoRA adapter folder"))
        form.addRow("Folder", self._folder_row)
        form.addRow("Adapter", self._adapter_row)
        form.addRow("Endpoint", self.endpoint)
        form.addRow("Served model", self.served_model)
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(self.label, 1)
        h.addWidget(self.param)
        form.addRow("Report as", row)
        self._model_form = form
        return box

    def _dataset_box(self) -> QGroupBox:
        box, form = self._form("Dataset")
        self.dataset = QLineEdit(objectName="dataset", placeholderText="curation store (.db) or SARLANG-1M JSON/CSV")
        self.images = QLineEdit(objectName="images", placeholderText="default: beside the dataset")
        self.split = QComboBox(objectName="split")
        for s in ("test", "train", "all"):
            self.split.addItem(s, s)
        self.limit = QSpinBox(objectName="limit", minimum=0, maximum=10_000_000, specialValueText="all samples")
        self.limit.setToolTip("Evaluate the first N samples only (0 = all)")
        self.types_box = QWidget()
        # two columns: one column of types made the Dataset box taller than the room above the queue
        self.types_layout = QGridLayout(self.types_box)
        self.types_layout.setContentsMargins(0, 0, 0, 0)
        self.types_layout.setHorizontalSpacing(8)
        self.types_layout.setVerticalSpacing(1)
        self.type_checks = {}
        self.preprocess = QComboBox(objectName="preprocess")
        self.preprocess.addItem("The current Pipeline (main window)", PRE_CURRENT)
        self.preprocess.addItem("The paper's chain (refined Lee, dB, stretch)", PRE_PAPER)
        self.preprocess.addItem("None: images as stored", PRE_NONE)
        if self.pipeline_source is None:
            self.preprocess.model().item(0).setEnabled(False)
            self.preprocess.setCurrentIndex(2)
        form.addRow("Source", path_row(self.dataset, self._pick_dataset))
        form.addRow("Images", path_row(self.images, lambda: self._pick_dir(self.images, "Image folder")))
        form.addRow("Split", self.split)
        form.addRow("Types", self.types_box)
        form.addRow("Limit", self.limit)
        form.addRow("Preprocess", self.preprocess)
        return box

    def _judge_box(self) -> QGroupBox:
        box, form = self._form("Judge (VQA)")
        self.judge = QComboBox(objectName="judge")
        self.judge.addItem("Offline: rules only (others undecided)", "offline")
        self.judge.addItem("LLM judge at an endpoint", ENDPOINT)
        self.judge.currentIndexChanged.connect(self._judge_changed)
        self.judge_endpoint = QLineEdit(objectName="judge_endpoint", placeholderText="https://api.openai.com/v1")
        self.judge_model = QLineEdit("gpt-4o-mini", objectName="judge_model")
        self.judge_mode = QComboBox(objectName="judge_mode")
        self.judge_mode.addItem("paper: the authors' rules", "paper")
        self.judge_mode.addItem("strict: exact answers", "strict")
        form.addRow("Judge", self.judge)
        form.addRow("Endpoint", self.judge_endpoint)
        form.addRow("Model", self.judge_model)
        form.addRow("Mode", self.judge_mode)
        self._judge_form = form
        self._judge_group = box
        return box

    def _generation_box(self) -> QGroupBox:
        box, form = self._form("Generation")
        self.batch_size = QSpinBox(objectName="batch_size", minimum=0, maximum=256, value=0)
        self.batch_size.setSpecialValueText("Auto (from free GPU memory)")   # shown at 0
        self.batch_size.setToolTip("Samples per generate call for a local model. Auto measures the memory "
                                   "one sample takes and fills the free GPU memory; on the CPU it is 4.")
        self.concurrency = QSpinBox(objectName="concurrency", minimum=1, maximum=128, value=4)
        self.concurrency.setToolTip("Requests at once (server backends)")
        self.max_tokens = QSpinBox(objectName="max_new_tokens", minimum=1, maximum=8192, value=128)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Concurrency", self.concurrency)
        form.addRow("Max new tokens", self.max_tokens)
        return box

    # -- behaviour ----------------------------------------------------------------------------------
    def _models_loaded(self, _rid, choices) -> None:
        self.set_models(choices)

    def set_models(self, choices) -> None:
        """``choices``: (label, registry name) pairs; the folder and endpoint choices follow them."""
        # Keep what the user picked; the "Model folder…" placeholder shown before the registry was
        # read is not a choice, so the first registered model replaces it.
        key = self.model.currentData() if self._model_picked else None
        self.model.blockSignals(True)
        self.model.clear()
        for label, name in choices:
            self.model.addItem(label, f"registry:{name}")
        self.model.addItem("Model folder…", FOLDER)
        self.model.addItem("OpenAI-compatible endpoint…", ENDPOINT)
        i = self.model.findData(key)
        self.model.setCurrentIndex(max(i, 0))
        self.model.blockSignals(False)
        self._model_changed()

    def _model_activated(self) -> None:
        self._model_picked = True

    def _task_changed(self) -> None:
        for cb in self.type_checks.values():
            cb.deleteLater()
        self.type_checks = {}
        for i, t in enumerate(CAPTION_TYPES if self.task.currentData() == "caption" else VQA_TYPES):
            cb = QCheckBox(t.replace("_", " "), checked=True, objectName=f"type_{t}")
            self.types_layout.addWidget(cb, i // 2, i % 2)
            self.type_checks[t] = cb
        if hasattr(self, "_judge_group"):
            self._judge_group.setEnabled(self.task.currentData() == "vqa")

    def _model_changed(self) -> None:
        if not hasattr(self, "_model_form"):
            return
        key = self.model.currentData() or ""
        local, endpoint = key != ENDPOINT, key == ENDPOINT
        self._model_form.setRowVisible(self._folder_row, key == FOLDER)
        self._model_form.setRowVisible(self._adapter_row, local)
        self._model_form.setRowVisible(self.endpoint, endpoint)
        self._model_form.setRowVisible(self.served_model, endpoint)

    def _judge_changed(self) -> None:
        on = self.judge.currentData() == ENDPOINT
        self._judge_form.setRowVisible(self.judge_endpoint, on)
        self._judge_form.setRowVisible(self.judge_model, on)

    def _pick_dir(self, edit: QLineEdit, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title, edit.text())
        if folder:
            edit.setText(folder)

    def _pick_dataset(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Dataset", self.dataset.text(), DATASET_FILTER)
        if path:
            self.dataset.setText(path)

    # -- the config ---------------------------------------------------------------------------------
    def _pipeline(self) -> Optional[dict]:
        choice = self.preprocess.currentData()
        if choice == PRE_NONE:
            return None
        if choice == PRE_PAPER or self.pipeline_source is None:
            from sarlang_core.preprocess.pipeline import Pipeline

            return Pipeline().to_dict()
        return self.pipeline_source().to_dict()

    def config(self) -> RunConfig:
        """The run as the form describes it; BenchmarkError says what to fix."""
        key = self.model.currentData() or ""

        def text(edit):
            return edit.text().strip() or None

        if key == ENDPOINT:
            backend = BackendSpec(kind="openai", model=self.served_model.text().strip(),
                                  endpoint=text(self.endpoint), label=text(self.label), param=text(self.param))
        else:
            model = key.split(":", 1)[1] if key.startswith("registry:") else self.model_folder.text().strip()
            if not model:
                raise BenchmarkError("choose a model: a registered one, a model folder or an endpoint")
            backend = BackendSpec(kind="local", model=model, adapter=text(self.adapter), label=text(self.label),
                                  param=text(self.param))
        types = tuple(t for t, cb in self.type_checks.items() if cb.isChecked())
        if not types:
            raise BenchmarkError("tick at least one item type")
        if len(types) == len(self.type_checks):
            types = ()
        dataset = DatasetSpec(source=self.dataset.text().strip(), images=text(self.images),
                              split=self.split.currentData(), types=types, limit=self.limit.value() or None)
        judge_on = self.judge.currentData() == ENDPOINT
        if judge_on and not text(self.judge_endpoint):
            raise BenchmarkError("give the judge's endpoint URL, or choose the offline judge")
        judge = JudgeSpec(mode=self.judge_mode.currentData(), endpoint=text(self.judge_endpoint) if judge_on else None,
                          model=self.judge_model.text().strip() or "gpt-4o-mini")
        return RunConfig(name=self.name.text().strip(), task=self.task.currentData(), backend=backend,
                         dataset=dataset, pipeline=self._pipeline(), judge=judge,
                         generation=GenerationConfig(max_new_tokens=self.max_tokens.value()),
                         batch_size=self.batch_size.value() or "auto", concurrency=self.concurrency.value())

    def preprocessing_variants(self) -> List[RunConfig]:
        """The form's run twice, as the paper's Tables 10/11 compare them: "<name>-raw" with the images
        as stored, "<name>-pre" through the form's recipe (the main window's Pipeline, else the paper's
        chain, when the form says none)."""
        cfg = self.config()
        pipeline = cfg.pipeline
        if pipeline is None:
            from sarlang_core.preprocess.pipeline import Pipeline

            pipeline = (self.pipeline_source() if self.pipeline_source else Pipeline()).to_dict()
        return [cfg.with_(name=f"{cfg.name}-raw", pipeline=None), cfg.with_(name=f"{cfg.name}-pre", pipeline=pipeline)]

    def folder_name(self) -> str:
        return slug(self.name.text())

    def remember(self) -> None:
        """Keep the non-secret choices for next time (never API keys: those come from the environment)."""
        s = app_settings.settings()
        edits = {"dataset": self.dataset, "endpoint": self.endpoint, "served_model": self.served_model,
                 "judge_endpoint": self.judge_endpoint, "judge_model": self.judge_model}
        for key in REMEMBERED:
            value = edits[key].text().strip()
            if key.endswith("endpoint"):   # a key written into the URL is a secret too
                value = redact_url(value)
            s.setValue(f"benchmarks/form/{key}", value)
        s.setValue("benchmarks/form/task", self.task.currentData())

    def _restore(self) -> None:
        s = app_settings.settings()
        edits = {"dataset": self.dataset, "endpoint": self.endpoint, "served_model": self.served_model,
                 "judge_endpoint": self.judge_endpoint, "judge_model": self.judge_model}
        for key in REMEMBERED:
            value = s.value(f"benchmarks/form/{key}")
            if value:
                edits[key].setText(str(value))
        i = self.task.findData(s.value("benchmarks/form/task"))
        if i >= 0:
            self.task.setCurrentIndex(i)


def _registry_choices():
    """(label, name) for the registered models (worker side: reads the registries)."""
    from sarlang_core.errors import SarlangError

    try:
        return registered_models()
    except SarlangError:
        return []
