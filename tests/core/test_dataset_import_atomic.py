"""Issue 10, case 2: an import and a template generation are each one transaction (a killed one
leaves the store as it was); a source already in the project is refused unless replaced; running
``generate`` twice adds nothing."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from sarlang_core.datasets.store import Store, StoreError
from sarlang_core.errors import CancelledError
from sarlang_core.progress import CancelToken
from sarlang_core.services import datasets as svc
from support.killing import kill_when_inside

REPO = Path(__file__).resolve().parents[2]


def _coco(path: Path, n_images: int, boxes_per_image: int, first_id: int = 1) -> Path:
    cats = [{"id": 1, "name": "ship"}, {"id": 2, "name": "aircraft"}]
    imgs = [{"id": i, "file_name": f"c{first_id + i:06d}.png", "width": 512, "height": 512} for i in range(n_images)]
    anns = [{"id": i * boxes_per_image + k, "image_id": i, "category_id": 1 + k % 2,
             "bbox": [10.5 + k % 40 * 12, 20.25 + k // 40 * 12, 8.4, 9.6]}
            for i in range(n_images) for k in range(boxes_per_image)]
    path.write_text(json.dumps({"images": imgs, "annotations": anns, "categories": cats}))
    return path


def _snapshot(path: Path) -> tuple:
    with Store.open(path) as s:
        st = s.stats()
        return (st["images"], st["boxes"], st["items"], st["items_per_source"],
                sorted((i.id, i.answer, i.status) for i in s.items()), s.imported_sources())


_KILLED_IMPORT = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
from sarlang_core.datasets.store import Store
from sarlang_core.services import datasets as svc
store_path, source, signal_file = sys.argv[2:5]
original = Store.import_records
def import_records(self, *args, **kwargs):
    self._conn.execute("PRAGMA cache_size=20")      # tiny cache: uncommitted pages spill into the WAL
    calls = [0]
    def inside():
        if self._conn.in_transaction:
            calls[0] += 1
            if calls[0] == 40:                       # deep inside the import's inserts
                open(signal_file, "w").write(str(os.getpid()))
                time.sleep(60)
        return 0
    self._conn.set_progress_handler(inside, 2000)
    return original(self, *args, **kwargs)
Store.import_records = import_records
svc.import_into(store_path, "coco", source)
print("FINISHED WITHOUT BEING KILLED")
"""


def test_import_killed_mid_transaction_leaves_the_store_as_it_was(tmp_path):
    store = tmp_path / "p.db"
    svc.import_into(store, "coco", _coco(tmp_path / "small.json", 3, 4, first_id=900000))
    svc.generate_templates(store)
    before = _snapshot(store)
    assert before[0] == 3 and before[1] == 12 and before[2] > 0
    big = _coco(tmp_path / "big.json", 2000, 60)
    signal_file = tmp_path / "inside"
    rc = kill_when_inside(_KILLED_IMPORT, (REPO, store, big, signal_file), signal_file, timeout=120)
    assert rc == -signal.SIGKILL
    assert _snapshot(store) == before                  # no image, no box of the killed import
    done = svc.import_into(store, "coco", big)          # and the file imports in full afterwards
    assert done.done["images"] == 2000 and done.done["boxes"] == 120_000


def test_importing_a_source_twice_is_refused_naming_it_and_replace_imports_it_anew(tmp_path):
    store = tmp_path / "p.db"
    src = _coco(tmp_path / "ann.json", 4, 3)
    svc.import_into(store, "coco", src)
    svc.generate_templates(store)
    with Store.open(store) as s:
        s.set_status(1, "accepted", reviewer="ana")
    before = _snapshot(store)
    with pytest.raises(StoreError, match=r"ann\.json is already imported.*--replace"):
        svc.import_into(store, "coco", src)
    with pytest.raises(StoreError, match="already imported"):   # the same file by another spelling
        svc.import_into(store, "coco", tmp_path / "." / "ann.json")
    assert _snapshot(store) == before
    out = svc.import_into(store, "coco", src, replace=True)
    assert out.done["boxes"] == 12 and out.done["removed boxes"] == 12 and out.done["removed items"] == before[2]
    with Store.open(store) as s:
        st = s.stats()
        assert (st["images"], st["boxes"], st["items"]) == (4, 12, 0)    # template items of the old boxes went
    svc.generate_templates(store)
    counting = [i for i in Store.open(store).items(type="counting")]
    assert counting and all(i.answer in ("1", "2") for i in counting)    # never doubled counts


def test_generate_twice_adds_nothing_and_new_images_get_theirs(tmp_path):
    store = tmp_path / "p.db"
    svc.import_into(store, "coco", _coco(tmp_path / "a.json", 5, 3))
    first = svc.generate_templates(store)
    n = first.done["items"]
    assert n > 0
    again = svc.generate_templates(store)
    assert again.done["items"] == 0 and again.done["images skipped (already have template items)"] == 5
    svc.import_into(store, "coco", _coco(tmp_path / "b.json", 2, 3, first_id=100))
    third = svc.generate_templates(store)
    assert third.done["items"] > 0
    with Store.open(store) as s:
        keys = [(i.image_id, i.question) for i in s.items(source="template")]
        assert len(keys) == len(set(keys)) == n + third.done["items"]


def test_cancelled_generation_writes_nothing(tmp_path):
    store = tmp_path / "p.db"
    svc.import_into(store, "coco", _coco(tmp_path / "a.json", 3000, 3))
    token = CancelToken()
    seen = []

    def progress(p):
        seen.append(p)
        token.cancel()      # cancel after the first 10,000 items went into the transaction

    with pytest.raises(CancelledError):
        svc.generate_templates(store, progress=progress, cancel=token)
    assert seen
    with Store.open(store) as s:
        assert s.count_items() == 0
