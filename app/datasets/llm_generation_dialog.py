"""Dataset ▸ Generate captions and questions with an LLM: the dialog over ``services.dataset_llm``.

The endpoint, model, prompts and prices are remembered in the settings; the API key never is (it
stays in memory for the run, or goes to the OS keyring when the user asks). The run goes on the
"jobs" lane; progress, tokens and cost arrive as signals; Cancel keeps every finished pair.
"""

from __future__ import annotations

import json
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import settings as app_settings
from app import workers
from app.datasets.messages import ERROR_STYLE, NOTE_STYLE, error_text
from sarlang_core.errors import CancelledError, SarlangError
from sarlang_core.progress import CancelToken
from sarlang_core.services.dataset_llm import (
    DEFAULT_PROMPTS,
    LLMOutcome,
    LLMProgress,
    LLMRequest,
    PromptSet,
    cost_of,
    count_pairs,
    run_generation,
    store_api_key,
)

DEFAULT_ENDPOINT = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o"
EDITED_PROMPT_ID = "studio-edited"
_TABS = (("concise", "Concise caption", "concise_question"), ("detailed", "Detailed caption", "detailed_question"),
         ("inquiries", "General questions", None))


def default_prices(model: str):
    """(USD per 1M input tokens, per 1M output tokens) from the core's table, or (0, 0)."""
    p_in, p_out = cost_of(model, 1_000_000, 0), cost_of(model, 0, 1_000_000)
    return (p_in or 0.0, p_out or 0.0)


class LLMGenerationDialog(QDialog):
    generated = Signal(object)           # LLMOutcome, after items were stored (also after Cancel)

    def __init__(self, store_path: str, parent=None):
        super().__init__(parent)
        self.setObjectName("LLMGenerationDialog")
        self.setWindowTitle("Generate captions and questions with an LLM")
        self.store_path = str(store_path)
        self._run_id = 0
        self._cancel: Optional[CancelToken] = None
        self.outcome: Optional[LLMOutcome] = None
        self._last_llm: Optional[tuple] = None      # (done, total) requests of the latest progress report
        self._build()
        self._restore()
        self.refresh_pairs()
        self.resize(1060, 640)

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        left = QVBoxLayout()
        top.addLayout(left, 2)

        box = QGroupBox("Endpoint")
        form = QFormLayout(box)
        self.endpoint = QLineEdit(objectName="endpoint", placeholderText="OpenAI-compatible base URL, …/v1")
        self.model = QLineEdit(objectName="model")
        self.api_key = QLineEdit(objectName="api_key", echoMode=QLineEdit.EchoMode.Password,
                                 placeholderText="empty: OPENAI_API_KEY or the OS keyring")
        self.remember_key = QCheckBox("Remember in the OS keyring", objectName="remember_key")
        self.key_status = QLabel("", objectName="key_status", wordWrap=True)
        form.addRow("URL", self.endpoint)
        form.addRow("Model", self.model)
        form.addRow("API key", self.api_key)
        form.addRow("", self.remember_key)
        form.addRow("", self.key_status)
        self.model.editingFinished.connect(self._model_changed)
        left.addWidget(box)

        box = QGroupBox("What to generate")
        form = QFormLayout(box)
        form.addRow(QLabel("Per image pair: a concise caption, a detailed caption and", wordWrap=True))
        self.n_inquiries = QSpinBox(objectName="n_inquiries", minimum=0, maximum=50, suffix=" general questions")
        self.n_inquiries.setSpecialValueText("no general questions")
        form.addRow("", self.n_inquiries)
        self.images = QComboBox(objectName="images")
        self.images.addItem("Only pairs without LLM items yet", True)
        self.images.addItem("All pairs with an optical image", False)
        form.addRow("Images", self.images)
        self.pairs_note = QLabel("counting pairs…", objectName="pairs_note")
        self.pairs_note.setStyleSheet(NOTE_STYLE)
        form.addRow("", self.pairs_note)
        self.concurrency = QSpinBox(objectName="concurrency", minimum=1, maximum=32)
        self.concurrency.setToolTip("Requests in flight at once (rate limits, and 429s, grow with it)")
        form.addRow("Parallel requests", self.concurrency)
        self.price_in = self._price("price_in")
        self.price_out = self._price("price_out")
        form.addRow("Input price", self.price_in)
        form.addRow("Output price", self.price_out)
        left.addWidget(box)
        left.addStretch(1)

        self.tabs = QTabWidget(objectName="prompt_tabs")
        self.prompt_edits, self.question_edits = {}, {}
        for kind, title, qfield in _TABS:
            page = QWidget()
            pl = QVBoxLayout(page)
            edit = QPlainTextEdit(objectName=f"prompt_{kind}")
            self.prompt_edits[kind] = edit
            pl.addWidget(edit, 1)
            if qfield:
                row = QHBoxLayout()
                row.addWidget(QLabel("Question stored with the caption"))
                q = QLineEdit(objectName=f"question_{kind}")
                self.question_edits[qfield] = q
                row.addWidget(q, 1)
                pl.addLayout(row)
            else:
                hint = QLabel("{n} becomes the number of questions and {categories} the paper's five categories; "
                              "write {{ and }} for literal braces. The model must reply with a JSON array.",
                              wordWrap=True)
                hint.setStyleSheet(NOTE_STYLE)
                pl.addWidget(hint)
            self.tabs.addTab(page, title)
        self.reset_prompt = QPushButton("Reset to paper default", objectName="reset_prompt")
        self.reset_prompt.clicked.connect(self.reset_current_prompt)
        self.tabs.setCornerWidget(self.reset_prompt, Qt.Corner.TopRightCorner)
        right = QGroupBox("Prompt templates (sent with the optical image)")
        QVBoxLayout(right).addWidget(self.tabs)
        top.addWidget(right, 3)
        lay.addLayout(top, 1)

        self.progress = QProgressBar(objectName="run_progress", textVisible=True)
        self.progress.setFormat("%v / %m requests")
        self.progress.setValue(0)
        self.live = QLabel("", objectName="live_usage")
        self.result = QLabel("", objectName="run_result", wordWrap=True,
                             textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result.setMinimumHeight(48)
        self.result.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        lay.addWidget(self.progress)
        lay.addWidget(self.live)
        lay.addWidget(self.result)
        buttons = QHBoxLayout()
        self.cache_note = QLabel("", objectName="cache_note")
        self.cache_note.setStyleSheet(NOTE_STYLE)
        buttons.addWidget(self.cache_note, 1)
        self.run_button = QPushButton("Generate", objectName="run_button", default=True)
        self.cancel_button = QPushButton("Cancel", objectName="cancel_button", enabled=False)
        self.close_button = QPushButton("Close", objectName="close_button")
        for b in (self.run_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        lay.addLayout(buttons)
        self._form = [self.endpoint, self.model, self.api_key, self.remember_key, self.n_inquiries, self.images,
                      self.concurrency, self.price_in, self.price_out, self.tabs, self.reset_prompt]

    @staticmethod
    def _price(name: str) -> QDoubleSpinBox:
        s = QDoubleSpinBox(objectName=name, decimals=3, minimum=0.0, maximum=1000.0, singleStep=0.05)
        s.setPrefix("$ ")
        s.setSuffix(" per 1M tokens")
        return s

    # -- settings (never the key) ---------------------------------------------------------------
    def _restore(self) -> None:
        s = app_settings.settings()
        self.endpoint.setText(str(s.value("llm/endpoint", DEFAULT_ENDPOINT)))
        self.model.setText(str(s.value("llm/model", DEFAULT_MODEL)))
        self.concurrency.setValue(int(s.value("llm/concurrency", 4)))
        self.images.setCurrentIndex(0 if str(s.value("llm/only_new", "true")).lower() == "true" else 1)
        try:
            prompts = PromptSet.from_dict(json.loads(str(s.value("llm/prompts", ""))))
        except (ValueError, SarlangError, TypeError):
            prompts = DEFAULT_PROMPTS
        self.set_prompts(prompts)
        self._model_changed()
        self.cache_note.setText(f"Answers are cached in {self._request_cache()} (a re-run costs nothing)")

    def _save(self, req: LLMRequest) -> None:
        s = app_settings.settings()
        s.setValue("llm/endpoint", req.endpoint)
        s.setValue("llm/model", req.model)
        s.setValue("llm/concurrency", req.concurrency)
        s.setValue("llm/only_new", "true" if req.only_new else "false")
        s.setValue("llm/prompts", json.dumps(req.prompts.to_dict()))
        s.setValue(f"llm/price/{req.model}", f"{req.price_in},{req.price_out}")

    def _model_changed(self) -> None:
        model = self.model.text().strip()
        stored = str(app_settings.settings().value(f"llm/price/{model}", ""))
        try:
            p_in, p_out = (float(v) for v in stored.split(","))
        except ValueError:
            p_in, p_out = default_prices(model)
        self.price_in.setValue(p_in)
        self.price_out.setValue(p_out)

    def _request_cache(self):
        return LLMRequest(self.store_path, "", "").cache()

    # -- prompts --------------------------------------------------------------------------------
    def set_prompts(self, prompts: PromptSet) -> None:
        for kind, edit in self.prompt_edits.items():
            edit.setPlainText(getattr(prompts, kind))
        for name, edit in self.question_edits.items():
            edit.setText(getattr(prompts, name))
            edit.setCursorPosition(0)
        self.n_inquiries.setValue(prompts.n_inquiries)

    def prompts(self) -> PromptSet:
        """The edited templates; raises RequestError (a message for the user) when one is unusable."""
        values = {kind: edit.toPlainText() for kind, edit in self.prompt_edits.items()}
        values.update({name: edit.text() for name, edit in self.question_edits.items()})
        values["n_inquiries"] = self.n_inquiries.value()
        same = all(values[k] == getattr(DEFAULT_PROMPTS, k) for k in values if k != "n_inquiries")
        return PromptSet(id=DEFAULT_PROMPTS.id if same else EDITED_PROMPT_ID, **values)

    def reset_current_prompt(self) -> None:
        kind, _title, qfield = _TABS[self.tabs.currentIndex()]
        self.prompt_edits[kind].setPlainText(getattr(DEFAULT_PROMPTS, kind))
        if qfield:
            self.question_edits[qfield].setText(getattr(DEFAULT_PROMPTS, qfield))
        else:
            self.n_inquiries.setValue(DEFAULT_PROMPTS.n_inquiries)

    # -- pairs ----------------------------------------------------------------------------------
    def refresh_pairs(self) -> None:
        workers.submit("io", ("llm-pairs", self.store_path), count_pairs, self.store_path,
                       on_result=lambda _rid, n: self._show_pairs(n),
                       on_error=lambda _rid, e: self.pairs_note.setText(f"cannot count pairs: {error_text(e)}"))

    def _show_pairs(self, n: dict) -> None:
        self.pair_counts = n
        self.images.setItemText(0, f"Only pairs without LLM items yet ({n['new']:,})")
        self.images.setItemText(1, f"All pairs with an optical image ({n['pairs']:,})")
        self.pairs_note.setText(f"{n['pairs']:,} pairs in the project · "
                                f"{n['pairs'] - n['new']:,} already have LLM items")

    # -- run ------------------------------------------------------------------------------------
    def request(self) -> LLMRequest:
        model = self.model.text().strip()
        return LLMRequest(self.store_path, self.endpoint.text().strip(), model, api_key=self.api_key.text().strip(),
                          prompts=self.prompts(), concurrency=self.concurrency.value(),
                          price_in=self.price_in.value(), price_out=self.price_out.value(),
                          only_new=bool(self.images.currentData()))

    @property
    def running(self) -> bool:
        return self._cancel is not None

    def start(self) -> None:
        if self.running:
            return
        try:
            req = self.request()
            if not req.endpoint or not req.model:
                raise SarlangError("Give the endpoint URL and the model name.")
        except SarlangError as e:
            self._show_error(str(e))
            return
        self._save(req)
        if self.remember_key.isChecked() and req.api_key:
            self._store_key(req.endpoint, req.api_key)
        self._run_id += 1
        self._cancel = CancelToken()
        self.outcome = None
        self._set_running(True)
        self.result.setStyleSheet("")
        self.result.setText("")
        self.live.setText("")
        self.progress.setRange(0, 0)
        self.progress.setFormat("%v / %m requests")
        self._last_llm = None
        workers.submit("jobs", ("llm", self._run_id), run_generation, req, cancel=self._cancel,
                       on_result=self._done, on_error=self._failed, on_progress=self._progress)

    def _store_key(self, endpoint: str, key: str) -> None:
        self.key_status.setStyleSheet(NOTE_STYLE)
        self.key_status.setText("storing the key in the OS keyring…")
        workers.submit("io", ("llm-key", endpoint), store_api_key, endpoint, key,
                       on_result=lambda *_: self.key_status.setText(f"Key stored in the OS keyring for {endpoint}"),
                       on_error=lambda _rid, e: self._key_failed(e))

    def _key_failed(self, exc: BaseException) -> None:
        self.key_status.setStyleSheet(ERROR_STYLE)
        self.key_status.setText(f"Key not remembered: {error_text(exc)}")

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
            self.cancel_button.setEnabled(False)
            self.live.setText(self.live.text() + " · cancelling, keeping the finished pairs…")

    def _set_running(self, running: bool) -> None:
        for w in self._form:
            w.setEnabled(not running)
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if not running:
            self._cancel = None

    def _progress(self, rid, p: LLMProgress) -> None:
        if rid != ("llm", self._run_id):
            return
        if p.stage == "llm":
            self._last_llm = (p.done, p.total)
            self.progress.setRange(0, max(p.total, 1))
            self.progress.setValue(p.done)
            approx = "≈ " if p.estimated else ""
            self.live.setText(f"{approx}{p.prompt_tokens:,} input + {p.completion_tokens:,} output tokens · "
                              f"{approx}${p.cost_usd:.4f} so far · last: {p.message}")
        elif p.stage != "store":       # "store" keeps the final token line in view
            self.progress.setRange(0, 0)
            self.live.setText(p.message)

    def _done(self, rid, out: LLMOutcome) -> None:
        if rid != ("llm", self._run_id):
            return
        self._set_running(False)
        self.outcome = out
        self._settle_progress()
        self.result.setStyleSheet(ERROR_STYLE if out.stopped_by else "")
        self.result.setText(self.summary_text(out))
        self.refresh_pairs()
        self.generated.emit(out)

    def _failed(self, rid, exc: BaseException) -> None:
        if rid != ("llm", self._run_id):
            return
        self._set_running(False)
        self._settle_progress()
        if isinstance(exc, CancelledError):
            self.result.setStyleSheet("")
            self.result.setText("Cancelled before any request was sent; nothing changed.")
        else:
            self._show_error(error_text(exc))

    def _settle_progress(self) -> None:
        done, total = self._last_llm or (0, 0)
        if not total:
            self.progress.setFormat("no requests sent")
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _show_error(self, text: str) -> None:
        self.result.setStyleSheet(ERROR_STYLE)
        self.result.setText(text)

    @staticmethod
    def summary_text(out: LLMOutcome) -> str:
        if not out.pairs:
            return "Nothing to do: no image pair needs LLM items (choose “All pairs” to ask again)."
        approx = "≈ " if out.estimated else ""
        if out.stopped_by and not out.items_added and not out.requests:
            hint = " Type the key in “API key” above (tick “Remember” to keep it)." if "(401)" in out.stopped_by else ""
            return f"Stopped: {out.stopped_by}.{hint}\nNothing was stored; fix this and run again."
        head = ("Stopped: " + out.stopped_by + "\n") if out.stopped_by else ("Cancelled. " if out.cancelled else "")
        lines = [f"{head}Added {out.items_added:,} items for {out.pairs_stored:,} of {out.pairs:,} pairs · "
                 f"{out.requests:,} requests · {out.cache_hits:,} cached answers · {approx}{out.prompt_tokens:,} "
                 f"input + {out.completion_tokens:,} output tokens · {approx}${out.cost_usd:.4f}"]
        if out.cancelled:
            lines.append("Pairs cut off half-way were not stored; their finished answers are cached for the next run.")
        if out.problems:
            lines.append(f"{len(out.problems)} problem(s): " + "; ".join(out.problems[:5]) +
                         (f"; … and {len(out.problems) - 5} more" if len(out.problems) > 5 else ""))
        return "\n".join(lines)

    def closeEvent(self, event) -> None:
        self.cancel()          # finished pairs are kept; the result still refreshes the review window
        super().closeEvent(event)
