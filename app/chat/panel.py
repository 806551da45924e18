"""Chat with a vision-language model about the scene, the viewport or a drawn region."""

from __future__ import annotations

import html
import io

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from sarlang_core.services.ask import ACTIONS

SOURCE_LABELS = [("scene", "Whole scene"), ("viewport", "Current view"), ("region", "Drawn region")]


def _units(text: str) -> int:
    """Qt's length of ``text`` (UTF-16 code units: a character outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def _png_data_url(pil_image) -> str:
    import base64

    buf = io.BytesIO()
    pil_image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class ChatPanel(QWidget):
    askRequested = Signal(str, str)        # question, image source
    actionRequested = Signal(str, str, str)  # action key, its input text, image source
    stopRequested = Signal()
    loadRequested = Signal(str)            # model choice key
    newChatRequested = Signal()
    exportRequested = Signal(str)          # path
    geojsonRequested = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("ChatPanel")
        lay = QVBoxLayout(self)

        row = QHBoxLayout()
        self.model = QComboBox(objectName="model_picker")
        self.model.setToolTip("Registered models (your models.json and models/registry.json), a model folder, "
                              "or an endpoint")
        self.load_button = QPushButton("Load", objectName="load_model")
        self.load_button.clicked.connect(lambda: self.loadRequested.emit(self.model.currentData() or ""))
        row.addWidget(self.model, 1)
        row.addWidget(self.load_button)
        lay.addLayout(row)
        self.model_status = QLabel("No model loaded", objectName="model_status", wordWrap=True)
        self.model_status.setStyleSheet("color: #9aa3ad; font-size: 9pt;")
        lay.addWidget(self.model_status)

        # "Ask about" and "Max tokens" on one row squeezed the source box to "Whole scer" in a
        # 300-px dock: each gets its own row and the box never gets narrower than its longest choice.
        row = QGridLayout()
        row.addWidget(QLabel("Ask about"), 0, 0)
        self.source = QComboBox(objectName="image_source")
        for key, label in SOURCE_LABELS:
            self.source.addItem(label, key)
        self.source.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.source.setMinimumWidth(self.source.sizeHint().width())
        row.addWidget(self.source, 0, 1)
        row.addWidget(QLabel("Max tokens"), 1, 0)
        self.max_tokens = QSpinBox(objectName="max_tokens", minimum=1, maximum=4096, value=256)
        row.addWidget(self.max_tokens, 1, 1, Qt.AlignmentFlag.AlignLeft)
        row.setColumnStretch(1, 1)
        lay.addLayout(row)

        actions = QGridLayout()
        actions.setSpacing(3)
        self.action_buttons = {}
        for i, action in enumerate(ACTIONS):
            b = QPushButton(action.label, objectName=f"action_{action.key}")
            b.setToolTip(action.template + (f"\n(type the {action.input_hint} in the box below first)"
                                            if action.needs_input else ""))
            b.clicked.connect(lambda _=False, a=action: self._action(a))
            actions.addWidget(b, i // 3, i % 3)   # three a row: four overflowed the 300-px dock
            self.action_buttons[action.key] = b
        lay.addLayout(actions)

        self.view = QTextBrowser(objectName="conversation")
        self.view.setOpenExternalLinks(False)
        self.view.setOpenLinks(False)      # links (the words of an answer) are handled, never followed
        lay.addWidget(self.view, 1)

        row = QHBoxLayout()
        self.input = QLineEdit(objectName="question", placeholderText="Ask about the scene… (Enter)")
        self.input.returnPressed.connect(self._ask)
        self.ask_button = QPushButton("Ask", objectName="ask")
        self.ask_button.clicked.connect(self._ask)
        self.stop_button = QPushButton("Stop", objectName="stop", enabled=False)
        self.stop_button.clicked.connect(self.stopRequested)
        row.addWidget(self.input, 1)
        row.addWidget(self.ask_button)
        row.addWidget(self.stop_button)
        lay.addLayout(row)

        row = QHBoxLayout()
        for text, name, slot in (("New chat", "new_chat", self.newChatRequested.emit),
                                 ("Copy", "copy", self.copy_last),
                                 ("Export…", "export", self._export),
                                 ("GeoJSON…", "geojson", self._geojson)):
            b = QPushButton(text, objectName=name)
            b.clicked.connect(slot)
            row.addWidget(b)
        lay.addLayout(row)
        self._question = self._caption = ""
        self._head_shown = True
        self._current_answer = ""
        self.last_answer = ""
        self._answer_pos = 0                # where the answer being streamed starts in the document
        self.last_answer_pos = 0            # ... and where the last finished one started
        self._links: dict = {}              # href -> (start, end, its link format, the text's own format)
        self._marked = ""                   # the href shown highlighted

    # -- model ----------------------------------------------------------------------------------
    def set_models(self, choices) -> None:
        """``choices``: (label, key) pairs."""
        self.model.clear()
        for label, key in choices:
            self.model.addItem(label, key)

    def set_model_status(self, text: str) -> None:
        self.model_status.setText(text)

    # -- conversation ---------------------------------------------------------------------------
    def start_answer(self, question: str, caption: str) -> None:
        """Show the question; its thumbnail and the answer follow (appended, never re-rendered,
        so a long conversation stays as cheap to extend as a short one)."""
        self._question, self._caption = question, caption
        self.input.clear()          # asked: the box is ready for the next question (a refused ask keeps it)
        self._head_shown = False
        self._current_answer = ""
        self.set_busy(True)

    def set_thumbnail(self, pil_image) -> None:
        """The exact image the model is given (after the Pipeline and the resize)."""
        self._show_head(f'<img src="{_png_data_url(pil_image)}" width="{pil_image.width}" '
                        f'height="{pil_image.height}"><br>')

    def _show_head(self, thumb: str = "") -> None:
        if self._head_shown:
            return
        self._head_shown = True
        self._insert_html(f'<p style="color:#8fb8e6"><b>You:</b> {html.escape(self._question)}</p>'
                          f'<p>{thumb}<span style="color:#7a828c;font-size:8pt">'
                          f'{html.escape(self._caption)}</span></p>'
                          f'<p><b style="color:#35d0ff">Model:</b> </p>')
        self._answer_pos = self._end_position()

    def append_piece(self, text: str) -> None:
        self._show_head()
        self._current_answer += text
        cursor = self.view.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)
        self._scroll_to_end()

    def finish_answer(self, note: str = "") -> None:
        self._show_head()
        self.last_answer = self._current_answer
        self.last_answer_pos = self._answer_pos
        tail = f'<br><span style="color:#ffb000">{html.escape(note)}</span>' if note else ""
        self._insert_html(tail + "<hr>")
        self._current_answer = ""
        self.set_busy(False)

    def clear(self) -> None:
        self.view.clear()
        self._current_answer = ""
        self._head_shown = True
        self.last_answer = ""
        self._links = {}
        self._marked = ""

    # -- links in the last answer ---------------------------------------------------------------
    def link_last_answer(self, spans, note: str = "") -> int:
        """Make parts of the last finished answer links, in place (the text, its copy and the
        streaming after it stay as they are): ``spans`` (start, end, href, emphasised) in the
        answer's characters. ``note``: a plain line instead (or after). Returns the links made."""
        start = self.last_answer_pos
        answer = self.last_answer
        made = 0
        if spans and self._text_at(start, answer) == answer.replace("\r\n", "\n"):
            for a, b, href, strong in spans:
                made += self._link(start + _units(answer[:a]), start + _units(answer[:b]), href, strong)
        if note:
            cursor = self.view.textCursor()
            cursor.setPosition(start + _units(answer))
            cursor.insertHtml(f'<br><span style="color:#7a828c;font-size:8pt">{html.escape(note)}</span>')
        return made

    def _text_at(self, start: int, answer: str) -> str:
        cursor = QTextCursor(self.view.document())
        cursor.setPosition(min(start, self._end_position()))
        cursor.setPosition(min(start + _units(answer), self._end_position()), QTextCursor.MoveMode.KeepAnchor)
        return cursor.selectedText().replace("\u2029", "\n")

    def _link(self, a: int, b: int, href: str, strong: bool) -> int:
        cursor = QTextCursor(self.view.document())
        cursor.setPosition(a + 1)
        own = cursor.charFormat()
        fmt = QTextCharFormat(own)
        fmt.setAnchor(True)
        fmt.setAnchorHref(href)
        fmt.setForeground(QColor("#9fd8ff" if strong else "#b8c4d0"))
        fmt.setToolTip("Click: where in the image this word came from (per-word map)")
        cursor.setPosition(a)
        cursor.setPosition(b, QTextCursor.MoveMode.KeepAnchor)
        cursor.setCharFormat(fmt)
        self._links[href] = (a, b, fmt, own)
        return 1

    def unlink_answers(self) -> None:
        """Make every linked word plain text again (the answers they pointed to are gone)."""
        for a, b, _fmt, own in self._links.values():
            self._format(a, b, own)
        self._links = {}
        self._marked = ""

    def mark_link(self, href: str) -> None:
        """Highlight the linked word ``href`` (the one whose map is shown); "" for none."""
        if self._marked in self._links:
            a, b, fmt, _own = self._links[self._marked]
            self._format(a, b, fmt)
        self._marked = href if href in self._links else ""
        if self._marked:
            a, b, fmt, _own = self._links[href]
            marked = QTextCharFormat(fmt)
            marked.setBackground(QColor("#7a4b00"))
            marked.setForeground(QColor("#ffffff"))
            self._format(a, b, marked)

    def links(self) -> list:
        return list(self._links)

    def _format(self, a: int, b: int, fmt: QTextCharFormat) -> None:
        cursor = QTextCursor(self.view.document())
        cursor.setPosition(a)
        cursor.setPosition(b, QTextCursor.MoveMode.KeepAnchor)
        cursor.setCharFormat(fmt)

    def _end_position(self) -> int:
        return self.view.document().characterCount() - 1

    def set_busy(self, busy: bool) -> None:
        self.ask_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        for b in self.action_buttons.values():
            b.setEnabled(not busy)

    def _insert_html(self, fragment: str) -> None:
        cursor = self.view.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertHtml(fragment)
        self._scroll_to_end()

    def _scroll_to_end(self) -> None:
        bar = self.view.verticalScrollBar()
        bar.setValue(bar.maximum())

    # -- input ----------------------------------------------------------------------------------
    def _action(self, action) -> None:
        """Actions without input go at once; the others take the input box's text (a class name
        for identify/count/position, the question for ask) and prompt for it when it is empty."""
        text = self.input.text().strip()
        if action.needs_input and not text:
            self.input.setPlaceholderText(f"Type the {action.input_hint or 'input'}, then press {action.label}")
            self.input.setFocus()
            return
        self.actionRequested.emit(action.key, text, self.source.currentData())

    def _ask(self) -> None:
        text = self.input.text().strip()
        self.askRequested.emit(text, self.source.currentData())

    def copy_last(self) -> None:
        QGuiApplication.clipboard().setText(self.last_answer)

    def _export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export conversation", "conversation.md",
                                              "Markdown (*.md);;JSON (*.json)")
        if path:
            self.exportRequested.emit(path)

    def _geojson(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export boxes", "boxes.geojson", "GeoJSON (*.geojson)")
        if path:
            self.geojsonRequested.emit(path)
