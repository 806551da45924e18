from __future__ import annotations

import json

import pytest

from sarlang_core.evaluate.jsonl_log import JsonlAppender


def test_appender_writes_lines_and_refuses_writes_once_closed(tmp_path):
    path = tmp_path / "log.jsonl"
    with JsonlAppender(path) as log:
        log.write({"id": 1, "text": "ä"})
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == [{"id": 1, "text": "ä"}]
    with pytest.raises(ValueError, match="closed"):
        log.write({"id": 2})
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1
