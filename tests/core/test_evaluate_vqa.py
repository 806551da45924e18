"""VQA rules (paper and strict), verdict parsing, breakdowns, counting MAE, applications."""

import pytest

from sarlang_core.errors import SarlangError
from sarlang_core.evaluate import (
    JUDGE_PROMPT,
    VerdictCache,
    VqaSample,
    classify,
    paper_prejudge,
    parse_number,
    parse_verdict,
    score_vqa,
    strict_prejudge,
)


@pytest.mark.parametrize("label,predict,want", [
    ("1", "12", True),                 # loose substring: the authors' rule counts it
    ("Ship", "a large ship", True),    # case folded
    ("yes", "Yes", True),
    ("no", "I am not sure", True),     # "no" inside "not"
    ("yes", "no", False),              # yes/no ground truth not found -> wrong
    ("3", "three", False),             # 0-99 ground truth not found -> wrong
    ("99", "about 98", False),
    ("100", "one hundred", None),      # outside 0-99: the judge decides
    ("oval", "circular", None),
])
def test_paper_prejudge(label, predict, want):
    assert paper_prejudge("q?", label, predict) is want


@pytest.mark.parametrize("label,predict,want", [
    ("1", "12", False),
    ("3", "three ships", True),
    ("3", "There are 3 ships.", True),
    ("0", "no ships", True),
    ("two", "2", True),
    ("yes", "Yes, there is a ship.", True),
    ("no", "Yes, there is a ship.", False),
    ("yes", "yes and no", None),
    ("no", "I am not sure", False),    # a hedge is not an answer (its "not" is no "no")
    ("center", "In the middle.", True),
    ("airplane", "aircraft", True),
    ("harbour", "a harbor", True),
    ("oil tank", "storage tank", True),
    ("top left", "upper-left", True),
    ("ship", "relationship", None),    # whole words only
    ("oval", "circular", None),
    ("ship", "", False),
])
def test_strict_prejudge(label, predict, want):
    assert strict_prejudge("q?", label, predict) is want


@pytest.mark.parametrize("label", ["no", "yes", "3", "ship", "oval"])
@pytest.mark.parametrize("predict", ["Not sure.", "I don't know", "I do not know.", "Cannot determine.",
                                     "It is unclear.", "Unable to tell from this image.", "Hard to say",
                                     "I'm sorry, I can't answer that.", "It cannot be determined", "No idea."])
def test_strict_mode_counts_hedges_and_refusals_as_wrong(label, predict):
    assert strict_prejudge("Is there a ship?", label, predict) is False


@pytest.mark.parametrize("label,predict,want", [("no", "No, I cannot see any ship.", True),
                                                ("no", "There is no ship.", True),
                                                ("unclear", "it is unclear", True)])
def test_strict_mode_answers_that_mention_hedge_words_still_count(label, predict, want):
    assert strict_prejudge("q?", label, predict) is want


@pytest.mark.parametrize("text,want", [("12", 12), ("three ships", 3), ("twenty-one", 21), ("1,000", 1000),
                                       ("one hundred and five", 105), ("no ships", 0), ("There are no ships", 0),
                                       ("a single ship", 1), ("a ship", None), ("", None)])
def test_parse_number(text, want):
    assert parse_number(text) == want


@pytest.mark.parametrize("reply,want", [("1", 1), ("0", 0), ("1.", 1), ("Answer: 1", 1), ("**0**", 0),
                                        ("1 - match", 1), ("The answer is 0", 0), ("`1`", 1), ("0\n", 0),
                                        ("1 or 0", None), ("10", None), ("0.5", None), ("Yes", None),
                                        ("I cannot help with that.", None), ("", None)])
def test_parse_verdict(reply, want):
    assert parse_verdict(reply) == want


def test_judge_prompt_is_the_papers_text():
    text = JUDGE_PROMPT.format(question="Q", ground_truth="G", prediction="P")
    assert text == ("Question: Q, Ground Truth Answer: G, Predicted Answer: P. Does the predicted answer match "
                    "the ground truth? Answer 1 for match and 0 for not match. Use semantic meaning, not exact "
                    "match. Synonyms are also treated as a match, e.g., oval and circular, pond and swimming pool.")


def test_applications_mapping():
    assert classify("counting") == ("instance counting", "counting")
    assert classify("Instance Counting") == ("instance counting", "counting")
    assert classify("object_identification") == ("object identification", "identification")
    assert classify("general inquiries") == ("others", "general")
    assert classify("caption_detailed") == ("image description", "caption_detailed")
    assert classify("region-referring") == ("region referring", "referring")
    assert classify("weather") == ("unspecified", "weather")
    assert classify("")[0] == "unspecified"


SET = [
    VqaSample("a", "How many ships?", "1", "12", "counting"),
    VqaSample("b", "How many ships?", "3", "three", "counting"),
    VqaSample("c", "How many tanks?", "4", "There are 6 tanks", "counting"),
    VqaSample("d", "Is there a ship?", "yes", "Yes, one.", "identification"),
    VqaSample("e", "What is it?", "ship", "a ship", "classification"),
    VqaSample("f", "What shape?", "oval", "circular", "general"),
    VqaSample("g", "How many cars?", "2", "unclear", "counting"),
]


def test_breakdowns_and_mae_paper_mode():
    s = score_vqa(SET, mode="paper")
    assert s.n == 7 and s.correct == 3 and s.undecided == 1          # a, d, e right; f needs a judge
    assert s.accuracy == pytest.approx(3 / 7) and s.accuracy_decided == pytest.approx(3 / 6)
    assert s.by_type["counting"] == {"n": 4, "correct": 1, "undecided": 0, "accuracy": 0.25}
    assert s.by_application["others"]["undecided"] == 1
    assert s.counting_mae == pytest.approx((11 + 0 + 2) / 3) and s.counting_unparsed == 1
    assert [v.how for v in s.verdicts] == ["rule"] * 5 + ["undecided", "rule"]
    d = s.to_dict()
    assert d["accuracy"] == s.accuracy and d["by_application"]["instance counting"]["n"] == 4


def test_strict_mode_fixes_the_loose_rule():
    s = score_vqa(SET, mode="strict")
    right = {v.id for v in s.verdicts if v.correct}
    assert right == {"b", "d", "e"}
    with pytest.raises(SarlangError):
        score_vqa(SET, mode="fuzzy")


class _NoNetworkJudge:
    """Looks like an LLMJudge backed by a full cache; fails the test if it would reach the network."""
    model = "gpt-4o-mini"
    prompt = "released"

    def __init__(self, cache):
        from sarlang_core.evaluate.judge import LLMJudge
        self._real = LLMJudge("http://127.0.0.1:9/v1", self.model, cache=cache, max_retries=0, timeout=1)

        def boom(*a, **k):
            raise AssertionError("an HTTP request was made despite a cache hit")
        self._real._backend.complete = boom

    def judge(self, *a, **k):
        return self._real.judge(*a, **k)


def test_cache_hit_makes_no_http_request(tmp_path):
    cache = VerdictCache(tmp_path / "v.sqlite")
    cache.put(VerdictCache.key("what shape?", "oval", "circular", "gpt-4o-mini", "released"), 1, "1", "gpt-4o-mini")
    s = score_vqa(SET, mode="paper", judge=_NoNetworkJudge(cache))
    f = [v for v in s.verdicts if v.id == "f"][0]
    assert f.correct is True and f.how == "cached" and s.cache_hits == 1 and s.judge_calls == 0
    assert s.undecided == 0 and s.correct == 4
