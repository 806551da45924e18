"""The review window's commands as buttons and as keys, from one table, so the two cannot drift."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QVBoxLayout, QWidget

# name, button text (the key in brackets), keys, tooltip, what it does on the review window
COMMANDS = (
    ("accept", "✓ Accept (A)", ("A",), "Accept this item and go to the next", lambda w: w.decide("accepted")),
    ("reject", "✗ Reject (X)", ("X",), "Reject this item and go to the next", lambda w: w.decide("rejected")),
    ("edit", "✎ Edit (E)", ("E",), "Edit the question and answer; Ctrl+Enter saves, Esc cancels",
     lambda w: w.start_edit()),
    ("save", "Save (Ctrl+Enter)", ("Ctrl+Return",), "Save the edit and go to the next", lambda w: w.save_edit()),
    ("cancel", "Cancel (Esc)", ("Escape",), "Drop the edit", lambda w: w.cancel_edit()),
    ("previous", "◀ Previous (P)", ("Left", "P"), "The previous item (← or P)", lambda w: w.previous()),
    ("next", "Next (N) ▶", ("Right", "N"), "The next item (→ or N)", lambda w: w.next()),
    ("undo", "Undo (Ctrl+Z)", ("Ctrl+Z",), "Undo the last change", lambda w: w.undo()),
)
HELP = "A accept · X reject · E edit (Ctrl+Enter saves, Esc cancels) · →/N next · ←/P previous · Ctrl+Z undo"


class ReviewActionBar(QWidget):
    """Accept / Reject / Edit (Save / Cancel while editing), Previous / Next and Undo for the current
    item; the window's keys are installed here too and run the same functions."""

    def __init__(self, window, parent=None):
        # No reference to ``window`` is kept: the window holds this bar, and a Python cycle
        # between the two would leave the closed window to the cyclic collector.
        super().__init__(parent)
        self.setObjectName("review_actions")
        self.buttons: dict[str, QPushButton] = {}
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        grid = QGridLayout()
        grid.setSpacing(4)
        places = {"accept": (0, 0), "reject": (0, 1), "edit": (0, 2), "save": (0, 0), "cancel": (0, 1),
                  "previous": (1, 0), "next": (1, 1), "undo": (1, 2)}
        for name, text, keys, tip, run in COMMANDS:
            button = QPushButton(text, objectName=f"review_{name}")
            shown = " or ".join(QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in keys)
            button.setToolTip(f"{tip} ({shown})")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)     # the keys keep going to the window
            button.clicked.connect(lambda _=False, r=run: r(window))
            grid.addWidget(button, *places[name])
            self.buttons[name] = button
            for key in keys:
                QShortcut(QKeySequence(key), window, lambda r=run: r(window))
        lay.addLayout(grid)
        self.help = QLabel(HELP, objectName="review_help", wordWrap=True)
        self.help.setStyleSheet("color: #7a828c; font-size: 9pt;")
        lay.addWidget(self.help)
        self.update_state(has_item=False, editing=False)

    def update_state(self, *, has_item: bool, editing: bool) -> None:
        """Deciding needs an item and no edit in progress; Save and Cancel replace the decisions while editing."""
        for name in ("accept", "reject", "edit"):
            self.buttons[name].setVisible(not editing)
            self.buttons[name].setEnabled(has_item)
        for name in ("save", "cancel"):
            self.buttons[name].setVisible(editing)
        for name in ("previous", "next"):
            self.buttons[name].setEnabled(has_item and not editing)


def build_dataset_menu(window):
    """The Dataset menu and toolbar of the review window: (LLM action, step actions by key, the
    "use the main window's Pipeline" action)."""
    menu = window.menuBar().addMenu("&Dataset")
    act_llm = QAction("Generate captions and questions with an &LLM…", window, objectName="act_llm")
    act_llm.setToolTip("Captions and general questions written from each pair's optical image")
    act_llm.triggered.connect(window.open_llm_dialog)
    step_actions = {}
    for key, text in (("import", "&Import more…"), ("templates", "Generate &template questions…"),
                      ("qc", "Run &quality checks"), ("split", "&Split train/test…"),
                      ("export", "&Export training set…")):
        act = step_actions[key] = QAction(text, window, objectName=f"act_{key}")
        act.triggered.connect(lambda _checked=False, k=key: window.open_step(k))
    for key in ("import", "templates", "llm", "qc", "split", "export"):
        menu.addAction(act_llm if key == "llm" else step_actions[key])
    menu.addSeparator()
    act_use_pipeline = menu.addAction("Use the main window's &Pipeline for this project", window.use_main_pipeline)
    act_use_pipeline.setEnabled(hasattr(window.parent(), "pipeline_panel"))
    act_use_pipeline.setToolTip("The chips here and the exported images go through it from now on")
    bar = window.addToolBar("Dataset")
    bar.setObjectName("toolbar:dataset")
    bar.addAction(act_llm)
    return act_llm, step_actions, act_use_pipeline
