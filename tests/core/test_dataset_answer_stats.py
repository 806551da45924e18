"""Answer distributions per item type: normalised top answers, counting histograms, caption lengths."""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter

import pytest

from sarlang_core.datasets import ImageRecord, Item, Store, StoreError
from sarlang_core.datasets.answer_stats import answer_distribution, first_number, normalise
from sarlang_core.services import datasets as svc


def _item(t, answer, status="pending", image="a.png"):
    return Item(image, t, "q?", answer, "template", status=status)


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "p.sarlang"
    with Store.create(p) as s:
        s.add_images([ImageRecord("a.png", "a.png", 10, 10), ImageRecord("b.png", "b.png", 10, 10)])
        s.add_items([_item("identification", a) for a in ("Yes", "yes.", "  YES ", "No", "no", "Maybe  so")]
                    + [_item("identification", "No", status="accepted")]
                    + [_item("counting", a) for a in ("There are 3 ships.", "3", "five", "There are no ships.",
                                                      "many", "12 tanks", "3 aircraft")]
                    + [_item("caption_concise", a)
                       for a in ("A harbour.", "Two  ships\nat sea", "", "one two three four")])
    return p


def test_top_answers_are_normalised_with_shares_and_other(path):
    with Store.open(path) as s:
        d = answer_distribution(s, top=1)
    ident = d["identification"]
    assert ident.kind == "answers" and ident.total == 7 and ident.distinct == 3
    assert ident.top[0].count == 3 and ident.top[0].answer == "No"   # ties: alphabetical; most frequent spelling
    assert ident.top[0].share == pytest.approx(3 / 7)
    assert ident.other == 4 and ident.other_share == pytest.approx(4 / 7)
    with Store.open(path) as s:
        full = answer_distribution(s, top=20)["identification"]
    assert [(a.answer.lower().rstrip("."), a.count) for a in full.top] == [("no", 3), ("yes", 3), ("maybe so", 1)]
    assert full.other == 0


def test_counting_is_a_numeric_histogram(path):
    with Store.open(path) as s:
        c = answer_distribution(s, types="counting")["counting"]
    assert c.kind == "numeric" and c.total == 7
    assert c.numeric == ((0, 1), (3, 3), (5, 1), (12, 1))
    assert c.unparsed == 1 and c.top == ()


def test_caption_lengths_in_words(path):
    with Store.open(path) as s:
        cap = answer_distribution(s)["caption_concise"]
    assert cap.kind == "length" and cap.total == 4
    L = cap.length
    assert (L.min, L.max) == (0, 4) and L.mean == pytest.approx((2 + 4 + 0 + 4) / 4)
    assert L.median == 3.0 and L.p95 == 4
    assert sum(n for _, _, n in L.bins) == 4 and L.bins[0][0] == 0 and L.bins[-1][1] >= 4


def test_status_and_type_filters_and_errors(path):
    with Store.open(path) as s:
        acc = answer_distribution(s, status="accepted")
        assert list(acc) == ["identification"] and acc["identification"].total == 1
        both = answer_distribution(s, status=["accepted", "pending"], types=["identification"])
        assert list(both) == ["identification"] and both["identification"].total == 7
        with pytest.raises(StoreError, match="unknown status"):
            answer_distribution(s, status="approved")
        with pytest.raises(StoreError, match="unknown item type"):
            answer_distribution(s, types="captions")


def test_services_are_json_ready_and_in_project_stats(path):
    d = svc.answer_distribution(path, top=2)
    json.dumps(d)
    assert list(d) == ["caption_concise", "identification", "counting"]
    assert d["identification"]["top"][0]["count"] == 3 and d["identification"]["other"] == 1
    assert d["counting"]["numeric"][0] == [0, 1]
    assert d["caption_concise"]["length"]["bins"][0]["lo"] == 0
    stats = svc.project_stats(path)
    assert stats["items"] == 18 and stats["answers"]["identification"]["total"] == 7


def test_matches_a_python_count_on_random_answers(tmp_path):
    rng = random.Random(4)
    forms = ["Yes", "yes.", "No", " no ", "A ship", "a  ship.", "Harbor", "harbour"]
    answers = [rng.choice(forms) for _ in range(2000)]
    with Store.create(tmp_path / "r.sarlang") as s:
        s.add_images([ImageRecord("a.png", "a.png", 1, 1)])
        s.add_items(_item("classification", a) for a in answers)
        got = answer_distribution(s, top=3)["classification"]
    want = Counter(normalise(a) for a in answers)
    assert [(normalise(a.answer), a.count) for a in got.top] == sorted(want.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert got.distinct == len(want) == 5 and got.total == 2000


def test_store_that_cannot_write_is_counted_without_the_index(path, monkeypatch):
    con = sqlite3.connect(path)       # a store written before the index existed
    con.execute("DROP INDEX IF EXISTS ix_items_answer")
    con.close()
    with Store.open(path) as s:
        def refuse():
            raise StoreError("read-only")
        monkeypatch.setattr(s, "_tx", refuse)
        assert answer_distribution(s)["identification"].total == 7
        assert not s.has_answer_index()
    with Store.open(path) as s:      # a writable store gets the index on first use
        answer_distribution(s)
        assert s.has_answer_index()


def test_number_and_normalise_helpers():
    assert first_number("There are 12 ships and 3 cars") == 12
    assert first_number("Seven.") == 7 and first_number("None") == 0 and first_number("several") is None
    assert normalise("  A  Ship. ") == "a ship" and normalise("Yes") == "yes"
