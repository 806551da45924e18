"""The paper's prompts, word for word, and the seven applications as actions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sarlang_core.errors import RequestError
from sarlang_core.vlm.prompts import (
    ACTIONS,
    CAPTION_PROMPT,
    CLASSES_PREFIX,
    VQA_TEMPLATE,
    action,
    caption_prompt,
    format_region,
    vqa_prompt,
)

PAPER = Path("/work/shared/paper/SARLANG-1M.txt")


@pytest.mark.skipif(not PAPER.exists(), reason="paper text not on this machine")
def test_prompts_are_the_papers():
    text = PAPER.read_text(encoding="utf-8")
    assert CAPTION_PROMPT.rstrip(".") + "," in text      # printed inside a sentence: '... sentence,"'
    assert VQA_TEMPLATE in text


def test_caption_and_vqa_prompts():
    assert caption_prompt() == "Describe the content of this image in one sentence."
    assert vqa_prompt("How many ships are there in the image?") == (
        "Question: How many ships are there in the image?. Answer the question concisely.")
    assert vqa_prompt("  Is there a bridge  ") == "Question: Is there a bridge. Answer the question concisely."
    assert vqa_prompt("What is this?", with_classes=True) == (
        "Question: The classes are: tank, car, aircraft, harbor, bridge, ship. What is this?. "
        "Answer the question concisely.")


@pytest.mark.parametrize("q", ["", "   ", "\n\t", None])
def test_empty_questions_are_refused(q):
    with pytest.raises(RequestError, match="empty"):
        vqa_prompt(q)
    with pytest.raises(RequestError, match="empty"):
        action("ask").prompt(q)


def test_seven_applications():
    assert [a.key for a in ACTIONS] == ["describe", "identify", "classify", "count", "position", "refer", "ask"]
    assert [a.key for a in ACTIONS if a.needs_region] == ["refer"]
    assert {a.key for a in ACTIONS if a.needs_input} == {"identify", "count", "position", "ask"}
    for a in ACTIONS:
        assert a.label and a.template


def test_action_questions():
    assert action("describe").prompt() == CAPTION_PROMPT
    assert action("describe").prompt(with_classes=True) == CAPTION_PROMPT
    assert action("count").question("ship") == "How many ships are there in the image?"
    assert action("count").question(" Ships ") == "How many ships are there in the image?"
    assert action("count").prompt("tank") == (
        "Question: How many tanks are there in the image?. Answer the question concisely.")
    assert action("position").question("aircraft") == "Where are most aircrafts positioned within the image?"
    assert action("identify").question("harbor") == "Are there any harbors in the image?"
    assert action("classify").question() == "What is the main object in the image?"
    assert action("refer").question(region=[56, 191, 112, 122]) == (
        "What is the object present in the area [56.0, 191.0, 112.0, 122.0]?")
    question = "Which way does the runway run?"
    assert action("ask").prompt(question, paper_template=False) == question
    assert action("count").prompt("car", with_classes=True, paper_template=False) == (
        f"{CLASSES_PREFIX} How many cars are there in the image?")


def test_region_formatting_one_decimal():
    assert format_region((56, 191.04, 112.25, 122.96)) == "[56.0, 191.0, 112.2, 123.0]"
    assert format_region((-0.04, 0, 1, 1)) == "[0.0, 0.0, 1.0, 1.0]"
    assert re.fullmatch(r"\[\d+\.\d, \d+\.\d, \d+\.\d, \d+\.\d\]", format_region((1, 2, 3, 4)))


@pytest.mark.parametrize("region", [None, (1, 2, 3), (1, 2, 0, 4), (1, 2, 3, float("nan")), "abcd"])
def test_bad_regions_are_refused(region):
    with pytest.raises(RequestError):
        action("refer").question(region=region)


def test_missing_class_and_unknown_action():
    with pytest.raises(RequestError, match="class"):
        action("count").question("  ")
    with pytest.raises(RequestError, match="unknown action"):
        action("segment")
