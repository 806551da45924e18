"""Controls the forms share. Those built from a config field's ``Param`` (help, bounds, step,
decimals, unit, choices): the pipeline panel's and the fine-tuning form's spin boxes, combos and
switches come from here, so a bound or a help text is never typed twice. And a path field with its
browse button (the benchmark and fine-tuning forms)."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLineEdit,
    QMenu,
    QPushButton,
    QSpinBox,
    QWidget,
)

from sarlang_core.preprocess.pipeline import Param


def param_tooltip(param: Param) -> str:
    """The help text, with the valid values in words for numbers ("an integer from 1 to 1024")."""
    if param.kind in (int, float) and param.range_text():
        return f"{param.help}\n({param.bounds_text()})"
    return param.help


def param_combo(param: Param, name: str, texts: Optional[Dict[str, str]] = None) -> QComboBox:
    """A combo of ``param.choices`` (item data: the choice), ``texts`` naming them for people."""
    box = QComboBox(objectName=name)
    for value in param.choices:
        box.addItem((texts or {}).get(value, value), value)
    box.setToolTip(param.help)
    return box


def param_spin(param: Param, name: str, value: float, *, bounds_tip: bool = False):
    """A spin box whose range, step, decimals, unit and tooltip come from ``param``."""
    low, high = param.ui_range
    box: Any
    if param.kind is int:
        box = QSpinBox(objectName=name, minimum=int(low), maximum=int(high), singleStep=int(param.step or 1))
        box.setGroupSeparatorShown(high >= 100_000)
    else:
        box = QDoubleSpinBox(objectName=name, decimals=param.decimals, minimum=low, maximum=high,
                             singleStep=param.step or 1.0)
    box.setValue(value)
    if param.unit:
        box.setSuffix(f" {param.unit}")
    box.setToolTip(param_tooltip(param) if bounds_tip else param.help)
    return box


def param_check(param: Param, name: str, text: str, value: bool = False) -> QCheckBox:
    box = QCheckBox(text, objectName=name, checked=value)
    box.setToolTip(param.help)
    return box


def param_widget(param: Param, name: str, value: Any, texts: Optional[Dict[str, str]] = None,
                 text: str = "") -> QWidget:
    """The control a field of this kind gets: a switch, a combo of its choices or a spin box."""
    if param.kind is bool:
        return param_check(param, name, text, bool(value))
    if param.choices:
        box = param_combo(param, name, texts)
        box.setCurrentIndex(max(0, box.findData(value)))
        return box
    return param_spin(param, name, value, bounds_tip=True)


def widget_value(widget: QWidget) -> Any:
    """What ``param_widget``'s control holds."""
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, QComboBox):
        return widget.currentData()
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        return widget.value()
    raise TypeError(f"not a Param control: {widget!r}")


def set_widget_value(widget: QWidget, value: Any) -> None:
    if isinstance(widget, QCheckBox):
        widget.setChecked(bool(value))
    elif isinstance(widget, QComboBox):
        widget.setCurrentIndex(max(0, widget.findData(value)))
    elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        widget.setValue(value)
    else:
        raise TypeError(f"not a Param control: {widget!r}")


def path_row(edit: QLineEdit, browse: Callable[[], None],
             choices: Sequence[Tuple[str, Callable[[], None]]] = ()) -> QWidget:
    """``edit`` with a "…" button that calls ``browse``, or, given ``choices`` ((text, slot) pairs),
    opens a menu of them (a file or a folder)."""
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit, 1)
    b = QPushButton("…", maximumWidth=32, objectName=f"{edit.objectName()}_browse")
    b.setToolTip("Browse")
    if choices:
        menu = QMenu(b)
        for text, slot in choices:
            menu.addAction(text, slot)
        b.setMenu(menu)
        b.setStyleSheet("QPushButton::menu-indicator { image: none; width: 0px; }")
    else:
        b.clicked.connect(browse)
    lay.addWidget(b)
    return w
