"""QC flags: one golden per flag, and clean items (from the released templates) pass."""

from __future__ import annotations

import pytest

from sarlang_core.datasets.qc import DuplicateIndex, Flag, QCConfig, check_item, parse_count, run_qc
from sarlang_core.datasets.records import BoxRecord, Item


def box(cat, image="a.png"):
    return BoxRecord(image, cat, (0.0, 0.0, 10.0, 10.0))


BOXES = [box("ship"), box("ship"), box("ship"), box("car")]

CLEAN = [
    Item("a.png", "caption_concise", "Describe the image briefly.",
         "A harbour with three ships moored along a bright pier."),
    Item("a.png", "caption_detailed", "Describe the image in detail.",
         "The SAR image shows a harbour. Three ships appear as bright elongated targets along the "
         "pier, while the calm water around them is dark. A car is parked on the quay."),
    Item("a.png", "identification", "Is there a ship in the image?", "Yes"),
    Item("a.png", "identification", "Is there a tank in the image?", "no."),
    Item("a.png", "counting", "How many ships are there in the image?", "3"),
    Item("a.png", "counting", "The classes are: tank, car, aircraft, harbor, bridge, ship. "
                              "How many cars are there in the image?", "one"),
    Item("a.png", "counting", "How many tanks are there in the image?", "zero"),
    Item("a.png", "positioning", "Where are most ships positioned within the image?", "Center"),
    Item("a.png", "referring", "What is the object present in the area [1, 2, 3, 4]?", "ship"),
    Item("a.png", "classification", "What kind of object is this?", "Aircraft"),
    Item("a.png", "general", "What does the bright line suggest?",
         "A man-made structure such as a covered pier; it is bright because of double bounce."),
]


def codes(flags):
    return [f.code for f in flags]


def test_clean_items_have_no_flags():
    seen = DuplicateIndex()
    for item in CLEAN:
        assert check_item(item, BOXES, seen=seen) == [], item


def test_run_qc_streams_clean():
    out = list(run_qc(iter(CLEAN), {"a.png": BOXES}))
    assert [it for it, _ in out] == CLEAN
    assert all(f == [] for _, f in out)


@pytest.mark.parametrize("item,code,words", [
    (Item("a.png", "caption_concise", "Describe.", "A red roof next to a GREEN field."),
     "colour_word", ["'green'", "'red'", "no colours"]),
    (Item("a.png", "general", "What is it?", "A colourful market."), "colour_word", ["'colourful'"]),
    (Item("a.png", "general", "What is it?", "Blue-ish water."), "colour_word", ["'blue'"]),
    (Item("a.png", "identification", "Is there a ship?", "maybe"), "bad_answer", ["'yes' or 'no'", "maybe"]),
    (Item("a.png", "positioning", "Where are the ships?", "upper left"), "bad_answer", ["top, center"]),
    (Item("a.png", "counting", "How many ships?", "several"), "bad_answer", ["number"]),
    (Item("a.png", "counting", "How many ships?", "twenty-one"), "bad_answer", ["number"]),
    (Item("a.png", "referring", "What is in [1, 2, 3, 4]?", "submarine"), "bad_answer", ["ship, aircraft"]),
    (Item("a.png", "classification", "What is it?", "house"), "bad_answer", ["known category"]),
    (Item("a.png", "classification", "What are the categories?", "aircraft, house"), "bad_answer",
     ["separated by commas"]),
    (Item("a.png", "referring", "What is in [1, 2, 3, 4]?", "aircraft, ship"), "bad_answer", ["one known"]),
    (Item("a.png", "counting", "How many ships are there in the image?", "2"), "count_mismatch",
     ["says 2 ship", "has 3 ship"]),
    (Item("a.png", "counting", "How many aircrafts are there?", "four"), "count_mismatch", ["has 0 aircraft"]),
    (Item("a.png", "caption_concise", "Describe.", "   "), "empty", ["caption is empty"]),
    (Item("a.png", "identification", "", "yes"), "empty", ["question is empty"]),
    (Item("a.png", "general", "<image>", "yes"), "empty", ["question is empty"]),
    (Item("a.png", "general", "Why?", ""), "empty", ["answer is empty"]),
    (Item("a.png", "caption_concise", "Describe.", "word " * 41), "too_long", ["41 words", "at most 40"]),
    (Item("a.png", "caption_detailed", "Describe.", "word " * 201), "too_long", ["201 words", "at most 200"]),
    (Item("a.png", "general", "why " * 81, "ok"), "too_long", ["question has 81 words"]),
    (Item("a.png", "poem", "Write.", "ok"), "unknown_type", ["'poem'"]),
])
def test_flag_goldens(item, code, words):
    flags = check_item(item, BOXES)
    assert code in codes(flags), flags
    msg = next(f.message for f in flags if f.code == code)
    for w in words:
        assert w in msg, msg
    assert all(isinstance(f, Flag) and f.message.endswith(".") for f in flags)


def test_colour_words_whole_words_only():
    # covered, bluetooth-like substrings, "reddy": no colour words
    for text in ("A covered pier and a hangar.", "Shredded debris near the greenhouse-free area.",
                 "White and dark areas; bright targets.", "A credit union building."):
        assert check_item(Item("a.png", "caption_concise", "Describe.", text), None) == [], text


def test_colour_in_question_is_not_flagged():
    # questions may ask about colour; only answers and captions are checked
    item = Item("a.png", "identification", "Is the roof red?", "no")
    assert check_item(item, BOXES) == []


def test_count_not_checked_without_boxes_or_category():
    item = Item("a.png", "counting", "How many ships are there?", "7")
    assert check_item(item, None) == []
    item = Item("a.png", "counting", "How many objects are there?", "7")
    assert check_item(item, BOXES) == []
    # meta["category"] wins over the text
    item = Item("a.png", "counting", "How many objects are there?", "1", meta={"category": "car"})
    assert check_item(item, BOXES) == []


def test_run_qc_missing_image_means_no_boxes():
    item = Item("b.png", "counting", "How many ships are there?", "2")
    (_, flags), = run_qc([item], {"a.png": BOXES})
    assert codes(flags) == ["count_mismatch"]
    (_, flags), = run_qc([item])
    assert flags == []


def test_max_words_configurable():
    cfg = QCConfig(max_words={"caption_concise": 3})
    item = Item("a.png", "caption_concise", "Describe.", "one two three four")
    assert codes(check_item(item, None, config=cfg)) == ["too_long"]


def test_duplicate_question_same_image():
    seen = DuplicateIndex()
    a = Item("a.png", "counting", "How many ships are there?", "3", id=1)
    b = Item("a.png", "counting", "  how many SHIPS are there ", "3", id=2)
    c = Item("b.png", "counting", "How many ships are there?", "0", id=3)
    assert check_item(a, None, seen=seen) == []
    flags = check_item(b, None, seen=seen)
    assert codes(flags) == ["duplicate"] and "item #1" in flags[0].message and "a.png" in flags[0].message
    assert check_item(c, None, seen=seen) == []        # another image: not a duplicate
    assert len(seen) == 3


def test_duplicate_and_near_duplicate_captions():
    base = ("A large harbour with many ships moored along two long piers and several warehouses "
            "beside the quay near the city")
    seen = DuplicateIndex()
    items = [
        Item("a.png", "caption_detailed", "Describe.", base),
        Item("a.png", "caption_detailed", "Describe in detail.", base.upper() + "."),      # exact
        Item("a.png", "caption_detailed", "Describe.", base + " centre"),                  # 20/21
        Item("a.png", "caption_detailed", "Describe.", "An airport with two runways."),    # different
        Item("b.png", "caption_detailed", "Describe.", base),                              # other image
    ]
    got = [codes(check_item(it, None, seen=seen)) for it in items]
    assert got == [[], ["duplicate"], ["near_duplicate"], [], []]


def test_near_duplicate_threshold():
    seen = DuplicateIndex()
    words = [f"w{i}" for i in range(10)]
    check_item(Item("a.png", "caption_concise", "D", " ".join(words)), None, seen=seen)
    # 9 shared of 11 distinct: 0.818 < 0.9 -> not flagged
    other = Item("a.png", "caption_concise", "D", " ".join(words[:9] + ["x"]))
    assert check_item(other, None, seen=seen) == []


def test_parse_count():
    assert parse_count("3.") == 3 and parse_count("Twenty") == 20 and parse_count("12") == 12
    assert parse_count("a few") is None and parse_count("") is None
