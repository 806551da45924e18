"""Keeping the main window usable on small screens: scrolling side panels, and a saved geometry
from a bigger screen brought back inside this one without squeezing the images."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDockWidget, QFrame, QMainWindow, QScrollArea, QWidget

SIDE_AREAS = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea)


def scrolling(panel: QWidget) -> QScrollArea:
    """``panel`` in a vertical scroll area as wide as the panel needs: a tall dock then scrolls
    instead of raising the window's minimum height."""
    area = QScrollArea(objectName=f"scroll:{panel.objectName()}")
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setMinimumWidth(panel.minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width())
    return area


def fit_to_screen(win: QMainWindow, central: QWidget) -> None:
    """Shrink and move a shown window into its screen's available area, then give the central
    widget back the width that docks saved on a wider screen took."""
    screen = win.screen() or QApplication.primaryScreen()
    if screen is None:
        return
    avail = screen.availableGeometry()
    frame = win.frameGeometry()
    extra_w, extra_h = frame.width() - win.width(), frame.height() - win.height()
    w = min(win.width(), avail.width() - extra_w)
    h = min(win.height(), avail.height() - extra_h)
    if (w, h) != (win.width(), win.height()):
        hint = win.minimumSizeHint()
        win.resize(max(w, hint.width()), max(h, hint.height()))
    frame = win.frameGeometry()
    if not avail.contains(frame):
        x = min(max(frame.x(), avail.x()), avail.right() - frame.width() + 1)
        y = min(max(frame.y(), avail.y()), avail.bottom() - frame.height() + 1)
        win.move(max(x, avail.x()), max(y, avail.y()))
    keep_central_usable(win, central)


def keep_central_usable(win: QMainWindow, central: QWidget) -> None:
    """When the side docks leave the central widget under half the width, shrink them to their
    natural widths."""
    if central.width() >= win.width() // 2:
        return
    docks = [d for d in win.findChildren(QDockWidget)
             if d.isVisible() and not d.isFloating() and win.dockWidgetArea(d) in SIDE_AREAS]
    if docks:
        win.resizeDocks(docks, [max(d.minimumSizeHint().width(), 300) for d in docks], Qt.Orientation.Horizontal)
