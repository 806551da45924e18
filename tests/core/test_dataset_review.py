"""The review service (what the review window runs): project-wide counts, the queue of matching
ids, decisions, edits, undo, bulk changes by filter, flags and the project's Pipeline, on a real
store in tmp_path."""

from __future__ import annotations

import pytest

from sarlang_core.datasets import ImageRecord, Item, Store
from sarlang_core.preprocess.pipeline import Pipeline
from sarlang_core.services.dataset_review import ReviewProject, matching_ids, project_counts


@pytest.fixture
def project(tmp_path):
    """12 items on 3 images: ids 1..12; types counting / general alternate, images img0..img2."""
    path = tmp_path / "p.db"
    with Store.create(path) as s:
        s.add_images([ImageRecord(f"img{i}.png", f"img{i}.png", 64, 64) for i in range(3)])
        s.add_items(Item(f"img{k % 3}.png", "counting" if k % 2 == 0 else "general", f"q{k}", f"a{k}")
                    for k in range(12))
        s.add_flags([(3, "colour", "mentions a colour"), (3, "length", "too short")])
    return path


def statuses(path) -> dict:
    with Store.open(path) as s:
        return {i.id: i.status for i in s.items()}


def test_counts_and_matching_ids_read_on_their_own_connection(project):
    counts = project_counts(project)
    assert (counts["items"], counts["reviewed"], counts["images"]) == (12, 0, 3)
    filters, ids = matching_ids(project, {"type": "counting", "status": "pending"})
    assert filters == {"type": "counting", "status": "pending"} and list(ids) == [1, 3, 5, 7, 9, 11]
    assert list(matching_ids(project, {"flag": True})[1]) == [3]


def test_decisions_edits_and_undo(project):
    with ReviewProject.open(project) as p:
        queue = p.queue(snapshot=matching_ids(project, {"type": "counting"})[1], type="counting")
        first = queue.next()
        assert p.decide(first, "accepted", reviewer="ana") == 1
        assert p.decide(p.item(first.id), "rejected", reviewer="ana") == 0      # already reviewed
        assert p.decide(p.item(first.id), "rejected", reviewer="ana") == 0      # nothing changed
        second = queue.next()
        assert p.edit(second, question="How many ships?", answer="3", reviewer="ana") == 1
        assert p.item(second.id).answer == "3" and p.item(second.id).status == "edited"
        assert p.flags(second.id) == [("colour", "mentions a colour"), ("length", "too short")]
        assert project_counts(project)["reviewed"] == 2

        assert p.undo(reviewer="ana") == second.id
        assert p.item(second.id).answer == "a2" and p.item(second.id).status == "pending"
        assert p.undo(reviewer="bob") is None           # only the reviewer's own changes
        assert p.undo(reviewer="ana") == first.id and p.item(first.id).status == "accepted"
    assert project_counts(project)["reviewed"] == 1


def test_bulk_by_filter_and_its_undo_as_one_step(project):
    with ReviewProject.open(project) as p:
        shown = {"type": "general", "status": "pending"}
        assert p.count(shown) == 6
        assert p.bulk(shown, "rejected", reviewer="ana") == 6
        assert p.count(shown) == 0
        after = statuses(project)
        assert all(after[i] == ("rejected" if i % 2 == 0 else "pending") for i in after)
        assert p.bulk({"type": "general"}, "rejected", reviewer="ana") == 0   # no change, nothing recorded
        assert p.undo(reviewer="ana") == 2
    assert set(statuses(project).values()) == {"pending"}


def test_the_project_pipeline_is_recorded(project):
    with ReviewProject.open(project) as p:
        assert p.pipeline.to_dict() == Pipeline().to_dict()        # the paper's chain by default
        chosen = Pipeline.from_dict({**Pipeline().to_dict(), "band": 1})
        p.set_pipeline(chosen)
    with ReviewProject.open(project) as p:
        assert p.pipeline.to_dict() == chosen.to_dict()


def test_opening_a_missing_project_creates_nothing(tmp_path):
    from sarlang_core.errors import SarlangError

    with pytest.raises(SarlangError):
        ReviewProject.open(tmp_path / "none.db")
    assert not (tmp_path / "none.db").exists()


def test_queue_ids_are_the_matching_items(project):
    with ReviewProject.open(project) as p:
        queue = p.queue(type="general")
        assert list(queue.ids()) == [2, 4, 6, 8, 10, 12] and queue.total == 6
        assert all(p.item(i).type == "general" for i in queue.ids())
        queue.ids().append(99)                         # a copy: the queue is unchanged
        assert queue.total == 6
