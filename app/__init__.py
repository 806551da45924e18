"""SARLANG Studio GUI (PySide6 + pyqtgraph): thin views over sarlang_core.services."""
