"""VQA scoring of files as LLaMA-Factory writes them: labels with a trailing newline, no ``type``."""

import pytest

from sarlang_core.datasets.templates import POOLS, format_region
from sarlang_core.evaluate import VqaSample, score_vqa
from sarlang_core.evaluate.applications import classify, infer_type

SET = [
    VqaSample("a", "Is there a ship in the image?", "yes", "Yes, there is."),
    VqaSample("b", "How many ships are there in the image?", "3", "3"),
    VqaSample("c", "Where are most ships positioned within the image?", "top", "top"),
    VqaSample("d", "What is the object present in the area [10, 20, 30, 40]?", "ship", "ship"),
    VqaSample("e", "What is the main object in the image?", "ship", "a ship"),
    VqaSample("f", "What is the shape of the runway?", "straight", "straight"),
]


def _newline(samples):
    from dataclasses import replace
    return [replace(s, label=s.label + "\n", predict=" " + s.predict + "\n") for s in samples]


@pytest.mark.parametrize("mode", ["paper", "strict"])
def test_trailing_newlines_score_as_the_clean_file(mode):
    clean, raw = score_vqa(SET, mode=mode), score_vqa(_newline(SET), mode=mode)
    assert raw.undecided == clean.undecided == 0
    assert [v.correct for v in raw.verdicts] == [v.correct for v in clean.verdicts]
    assert raw.correct == clean.correct == 6


def test_applications_come_from_the_question_when_the_type_is_missing():
    s = score_vqa(_newline(SET))
    assert s.types_inferred == 6
    assert s.by_application == {
        "instance counting": {"n": 1, "correct": 1, "undecided": 0, "accuracy": 1.0},
        "object classification": {"n": 1, "correct": 1, "undecided": 0, "accuracy": 1.0},
        "object identification": {"n": 1, "correct": 1, "undecided": 0, "accuracy": 1.0},
        "object positioning": {"n": 1, "correct": 1, "undecided": 0, "accuracy": 1.0},
        "others": {"n": 1, "correct": 1, "undecided": 0, "accuracy": 1.0},
        "region referring": {"n": 1, "correct": 1, "undecided": 0, "accuracy": 1.0},
    }
    assert s.counting_n == 1 and s.to_dict()["types_inferred"] == 6


def test_a_given_type_wins_over_the_question():
    s = score_vqa([VqaSample("a", "How many ships?", "3", "3", "general")])
    assert s.types_inferred == 0 and list(s.by_type) == ["general"]


@pytest.mark.parametrize("pool,question", [(pool, q) for pool, qs in POOLS.items() for q in qs])
def test_every_template_question_is_recognised(pool, question):
    text = question.format(a_cat="a ship", cats="ships", cat="ship", half="top",
                           region=format_region([10.0, 20.0, 30.0, 40.0]))
    assert infer_type(text) == pool.split(".")[0]


@pytest.mark.parametrize("question,qtype", [
    ("Describe this SAR image in detail.", "caption_detailed"),
    ("Describe the image concisely.", "caption_concise"),
    ("What is the direction of the runway?", "general"),
    ("What type of land cover dominates?", "general"),
    ("", ""),
])
def test_other_question_forms(question, qtype):
    assert infer_type(question) == qtype
    assert classify(qtype)[0] == ("unspecified" if not qtype else classify(qtype)[0])


@pytest.mark.parametrize("question, qtype", [
    ("<image>The classes are: tank, car, aircraft, harbor, bridge, ship. How many cars are there?", "counting"),
    ("Please describe the image in detail.", "caption_detailed"),
    ("Give a short caption of this image.", "caption_concise"),
    ("What is the object in the image?", "classification"),
])
def test_scoring_reads_question_types_as_the_importers_do(question, qtype):
    """One reader of question forms: a prediction file whose prompts carry the classes prefix (as
    the paper's prompts do) or a caption request in other words gets the same type as on import."""
    from sarlang_core.datasets.importers import guess_type

    assert infer_type(question) == guess_type(question) == qtype
