"""The `sarlang-cli train run ...` line that starts the form's run from a shell (a GPU server, a
batch job), selectable, with a copy button."""

from __future__ import annotations

from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout


class CommandDialog(QDialog):
    def __init__(self, command: str, parent=None):
        super().__init__(parent)
        self.setObjectName("CommandDialog")
        self.setWindowTitle("Command line of this run")
        self.resize(760, 240)
        lay = QVBoxLayout(self)
        note = QLabel("The same run from a shell (settings left at their defaults are not written). "
                      "Add --progress-jsonl for machine-readable progress.", wordWrap=True)
        note.setStyleSheet("color: #9aa3ad;")
        lay.addWidget(note)
        self.text = QPlainTextEdit(command, objectName="command_text", readOnly=True)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.text.setFont(font)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.text.selectAll()
        lay.addWidget(self.text, 1)
        row = QHBoxLayout()
        self.copied = QLabel("", objectName="copied")
        self.copied.setStyleSheet("color: #98c379;")
        row.addWidget(self.copied, 1)
        copy = QPushButton("Copy", objectName="copy_command")
        copy.clicked.connect(self.copy)
        close = QPushButton("Close", objectName="close_command")
        close.clicked.connect(self.accept)
        row.addWidget(copy)
        row.addWidget(close)
        lay.addLayout(row)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.text.toPlainText())
        self.copied.setText("Copied to the clipboard")
