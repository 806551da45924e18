"""The dataset steps through the GUI: new project (COCO with a bad record), template questions,
quality checks, split, export, open for review; and inputs that must fail with a clear message
and leave nothing broken behind."""

import json

import pytest
from gui_helpers import screenshot, write_coco_chips
from PIL import Image

from sarlang_core.datasets.records import Item
from sarlang_core.datasets.store import Store

N_IMAGES = 4


@pytest.fixture
def coco(tmp_path):
    """A SARDet-100K-style COCO file over four chips; annotation 99 has a malformed bbox."""
    ann, images = write_coco_chips(tmp_path, N_IMAGES, extra_annotations=[
        {"id": 99, "image_id": 1, "category_id": 1, "bbox": [5, "oops", 3]}])
    return ann, images


def run(qtbot, dlg, timeout=30000):
    dlg.run_button.click()
    qtbot.waitUntil(lambda: not dlg.running, timeout=timeout)


def run_with(qtbot, dlg, **fields):
    """Type ``fields`` (line edit name -> path) into the dialog, run it: the summary it shows."""
    for name, value in fields.items():
        getattr(dlg, name).setText(str(value))
    run(qtbot, dlg)
    return dlg.summary.text()


def new_project(window, kind, source, folder, project):
    dlg = window.new_dataset_dialog()
    dlg.kind.setCurrentIndex(dlg.kind.findData(kind))
    dlg.source.setText(str(source))
    dlg.folder.setText(str(folder))
    dlg.project.setText(str(project))
    return dlg


def counts(store_path):
    with Store.open(store_path) as store:
        stats = store.stats()
        stats["template_items"] = store.count_items(source="template")
        return stats


def test_new_project_to_exported_training_set(qtbot, window, coco, tmp_path):
    from app.datasets.review_window import ReviewWindow

    ann, images = coco
    project = tmp_path / "ships.db"
    dlg = new_project(window, "coco", ann, images, project)
    assert dlg.templates.isEnabled() and dlg.templates.isChecked()
    run(qtbot, dlg)
    stats = counts(project)
    assert stats["images"] == N_IMAGES and stats["boxes"] == N_IMAGES      # the valid records are in
    n_templates = stats["template_items"]
    assert n_templates > 0
    assert "Created ships.db" in dlg.summary.text() and "1 record(s) left out" in dlg.summary.text()
    problems = [dlg.listing.item(i).text() for i in range(dlg.listing.count())]
    assert len(problems) == 1 and "instances.json" in problems[0] and "annotation id 99" in problems[0]
    assert "malformed bbox" in problems[0] and dlg.listing.isVisible()
    assert dlg.open_button.isEnabled() and dlg.progress.format() == "done"
    screenshot(dlg, "dataset_new_project_problems")

    dlg.open_button.click()                  # Open for review
    review = next(w for w in window.findChildren(ReviewWindow))
    qtbot.waitUntil(lambda: not review.queue_loading and review.queue.total == n_templates, timeout=10000)
    assert review.current is not None

    # templates again: images that have template items are skipped, so nothing is added twice
    tpl = review.open_step("templates")
    qtbot.waitUntil(lambda: tpl.info is not None, timeout=5000)
    assert "exist already" in tpl.note.text() and "skipped" in tpl.note.text()
    run(qtbot, tpl)
    assert tpl.progress.format() == "done", tpl.summary.text()
    assert counts(project)["template_items"] == n_templates and tpl.run_button.text() == "Generate"
    screenshot(tpl, "dataset_templates_again")
    with Store.open(project) as store:          # a human copy of a template question: QC flags the repeat
        first = store.item(1)
        store.add_items([Item(first.image_id, first.type, first.question, first.answer, "human")])
    total = n_templates + 1

    # quality checks start on opening; the repeated question is flagged, the Flags filter finds it
    qc = review.open_step("qc")
    qtbot.waitUntil(lambda: not qc.running and qc.outcome is not None, timeout=30000)
    assert "items flagged" in qc.summary.text() and "duplicate" in qc.summary.text()
    flagged = qc.outcome.done["items flagged"]
    assert flagged >= 1
    qtbot.waitUntil(lambda: bool((review.stats_view.last or {}).get("flags_per_code", {}).get("duplicate")),
                    timeout=10000)
    qc.flagged_button.click()
    assert review.flag_filter.currentData() == "flagged"
    qtbot.waitUntil(lambda: not review.queue_loading and review.queue.total == flagged, timeout=10000)
    review.flag_filter.setCurrentIndex(review.flag_filter.findData("any"))

    # split 0.7 by image; a second split keeps the given splits and says so
    split = review.open_step("split")
    qtbot.waitUntil(lambda: split.info is not None, timeout=5000)
    assert f"{N_IMAGES} will be split" in split.note.text() and split.ratio.value() == 0.7
    run(qtbot, split)
    assert split.progress.format() == "done", split.summary.text()
    with Store.open(project) as store:
        splits = [img.split for img in store.images()]
    assert sorted(splits) == ["test", "train", "train", "train"]
    assert "0 image(s) kept" in split.summary.text()
    qtbot.waitUntil(lambda: "changes nothing" in split.note.text(), timeout=5000)

    # export: nothing is accepted yet -> a clear message, nothing written
    out = tmp_path / "train_set"
    export = review.open_step("export")
    qtbot.waitUntil(lambda: export.info is not None, timeout=5000)
    assert "Review items first" in export.note.text()
    export.out.setText(str(out))
    run(qtbot, export)
    assert "nothing to export" in export.summary.text() and not out.exists()

    qtbot.waitUntil(lambda: not review.queue_loading, timeout=10000)
    assert review.bulk_apply("accepted") == total
    export.refresh_info()
    qtbot.waitUntil(lambda: "are accepted or edited" in export.note.text()
                    and export.info["reviewed_items"] == total, timeout=5000)
    assert export.format.currentData() == "sharegpt" and export.status.currentData() == "accepted"
    run(qtbot, export, timeout=60000)
    assert export.progress.format() == "done", export.summary.text()
    info = json.loads((out / "dataset_info.json").read_text())
    assert set(info) >= {"sarlang_train", "sarlang_test"}
    train = json.loads((out / "sarlang_train.json").read_text())
    test = json.loads((out / "sarlang_test.json").read_text())
    assert len(train) + len(test) == total
    pngs = sorted(p.name for p in (out / "images").iterdir())
    assert len(pngs) == N_IMAGES and all(p.endswith(".png") for p in pngs)
    assert (out / "pipeline.json").is_file() and export.open_folder.isEnabled()
    listed = [export.listing.item(i).text() for i in range(export.listing.count())]
    assert "dataset_info.json" in listed
    screenshot(export, "dataset_export_done")

    # exporting again into the same folder asks first
    run(qtbot, export)
    assert export.run_button.text() == "Export into it" and "already holds" in export.summary.text()
    run(qtbot, export, timeout=60000)
    assert export.progress.format() == "done"


def test_bad_inputs_get_clear_errors_and_write_nothing(qtbot, window, coco, tmp_path):
    ann, images = coco
    project = tmp_path / "new.db"
    dlg = new_project(window, "coco", ann, tmp_path / "no_such_images", project)
    run(qtbot, dlg)
    assert "images folder" in dlg.summary.text() and "does not exist" in dlg.summary.text()
    assert dlg.progress.format() == "failed" and not project.exists() and dlg.run_button.isEnabled()
    assert not dlg.open_button.isEnabled()

    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no images" in run_with(qtbot, dlg, folder=empty) and not project.exists()

    bad = tmp_path / "broken.json"
    bad.write_text('{"images": [')
    assert "not a JSON file" in run_with(qtbot, dlg, folder=images, source=bad) and not project.exists()

    # a file at the project path that is not a dataset project is never overwritten
    notes = tmp_path / "notes.db"
    notes.write_text("my notes")
    assert "not a dataset project" in run_with(qtbot, dlg, source=ann, project=notes)
    assert notes.read_text() == "my notes"

    # COCO whose images are all missing: nothing imported, so no empty project is left behind
    other = tmp_path / "other_images"
    other.mkdir()
    Image.new("L", (8, 8)).save(other / "unrelated.png")
    assert "no project was created" in run_with(qtbot, dlg, folder=other, project=project)
    assert not project.exists()
    assert dlg.listing.count() >= N_IMAGES and not dlg.open_button.isEnabled()


def test_existing_project_is_added_to_only_after_asking(qtbot, window, coco, tmp_path):
    ann, images = coco
    project = tmp_path / "ships.db"
    dlg = new_project(window, "coco", ann, images, project)
    dlg.templates.setChecked(False)
    run(qtbot, dlg)
    assert counts(project)["images"] == N_IMAGES and counts(project)["items"] == 0

    sar, opt = tmp_path / "sar", tmp_path / "optical"
    sar.mkdir()
    opt.mkdir()
    for i in range(2):
        Image.new("L", (32, 32), 60 * i).save(sar / f"pair_{i}.png")
        Image.new("RGB", (32, 32), (90, 120, 30 * i)).save(opt / f"pair_{i}.png")
    dlg.kind.setCurrentIndex(dlg.kind.findData("pairs"))
    assert not dlg.templates.isEnabled() and dlg.form.labelForField(dlg.source).text() == "SAR images folder"
    assert "already a dataset project" in run_with(qtbot, dlg, source=sar, folder=opt)
    assert dlg.run_button.text() == "Add to this project"
    assert counts(project)["images"] == N_IMAGES
    run(qtbot, dlg)
    assert counts(project)["images"] == N_IMAGES + 2 and "Added to ships.db" in dlg.summary.text()


def test_import_more_from_the_review_window(qtbot, open_review, coco, tmp_path):
    from sarlang_core.services import datasets as svc

    ann, images = coco
    project = tmp_path / "ships.db"
    sar = tmp_path / "sar"
    sar.mkdir()
    Image.new("L", (32, 32), 60).save(sar / "pair_0.png")
    svc.import_into(project, "pairs", sar, optical_dir=sar)
    review = open_review(project)
    assert [a.text() for a in review.menuBar().actions()[0].menu().actions()][:2] == \
        ["&Import more…", "Generate &template questions…"]
    dlg = review.open_step("import")
    assert dlg.project.text() == str(project) and "Import more" in dlg.windowTitle()
    assert not dlg.open_button.isVisible()
    # the user chose this project: no question asked
    assert "Added to ships.db" in run_with(qtbot, dlg, source=ann, folder=images)
    stats = counts(project)
    assert stats["images"] == N_IMAGES + 1 and stats["template_items"] > 0
    qtbot.waitUntil(lambda: (review.stats_view.last or {}).get("images") == N_IMAGES + 1, timeout=10000)
    qtbot.waitUntil(lambda: review.queue.total == stats["template_items"], timeout=10000)

    # the same file again: the dialog asks, and only then replaces what it brought (no doubled boxes)
    run(qtbot, dlg)
    assert dlg.run_button.text() == "Replace it" and "already imported" in dlg.summary.text()
    assert counts(project) == stats
    run(qtbot, dlg)
    assert dlg.progress.format() == "done", dlg.summary.text()
    again = counts(project)
    assert (again["images"], again["boxes"], again["template_items"]) == \
        (stats["images"], stats["boxes"], stats["template_items"])
    review.close()
