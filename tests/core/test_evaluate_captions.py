"""Caption metrics: goldens from pycocoevalcap, a hand-computed BLEU, our fast engine against
pycocoevalcap's scorers (goldens, random corpora, a realistic set), and the PTB tokenizer
against the real Stanford CoreNLP jar (when java is on PATH)."""

import math
import os
import random
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sarlang_core.errors import SarlangError
from sarlang_core.evaluate import CAPTION_KEYS, ptb_tokenizer, score_captions, score_captions_detailed
from sarlang_core.evaluate.caption_fast import lcs_lengths
from sarlang_core.evaluate.ptb_tokenizer import PUNCTUATIONS, ptb_tokenize, ptb_tokens

ENGINES = ("fast", "reference")
TOL = 1e-9   # the bar; in practice the two engines agree to the last bit

P = ["There are two ships in the harbor.", "A bridge crosses the river in the middle of the image.",
     "Several aircraft are parked near the terminal.", "The image shows farmland with a road.",
     "An oil tank is in the top-left corner."]
R = ["Two ships are docked in the harbor.", "A long bridge spans the river across the middle of the image.",
     "Aircraft are parked beside the terminal building.", "Farmland and a narrow road fill the image.",
     "Three oil tanks sit in the upper-left corner."]

# computed once with pycocoevalcap 1.2's Bleu(4), Rouge(), Cider() (values as it reports them)
GOLD_WHITESPACE = {"Bleu_1": 0.5231761834492339, "Bleu_2": 0.3577287567343292, "Bleu_3": 0.25318845945118207,
                   "Bleu_4": 0.18746782702466686, "ROUGE_L": 0.4816539938473946, "CIDEr": 1.851115361291289}
GOLD_PTB = {"Bleu_1": 0.6896413327285356, "Bleu_2": 0.4936190741888108, "Bleu_3": 0.338043531902318,
            "Bleu_4": 0.232848416409792, "ROUGE_L": 0.620068063578959, "CIDEr": 2.701600269741438}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("tokenize,gold", [("whitespace", GOLD_WHITESPACE), ("ptb", GOLD_PTB)])
def test_goldens(tokenize, gold, engine):
    got = score_captions(P, R, tokenize=tokenize, engine=engine)
    assert set(got) == set(gold)
    for k in gold:
        assert got[k] == pytest.approx(gold[k], rel=1e-9), k


def test_hand_computed_bleu1_and_brevity_penalty():
    # every hypothesis word is matched (precision 1); hypothesis 8 words, closest references 7 + 2 = 9
    got = score_captions(["the ship is in the harbor", "a ship"], ["the ship is docked in the harbor", "a ship"])
    assert got["Bleu_1"] == pytest.approx(math.exp(1 - 9 / 8), rel=1e-7)


def test_identical_strings_score_bleu_one():
    caps = ["a large ship is moored at the long pier", "two aircraft are parked on the apron near a hangar",
            "the river crosses the image from left to right"]
    got = score_captions(caps, caps)
    for n in range(1, 5):
        assert got[f"Bleu_{n}"] == pytest.approx(1.0, abs=1e-6)
    assert got["ROUGE_L"] == pytest.approx(1.0)


def test_ptb_and_whitespace_differ_on_case_and_punctuation():
    pred, ref = ["A Ship, near the Pier."], ["a ship near the pier"]
    ws, ptb = score_captions(pred, ref), score_captions(pred, ref, tokenize="ptb")
    assert ptb["Bleu_1"] == pytest.approx(1.0, abs=1e-6) and ptb["ROUGE_L"] == pytest.approx(1.0)
    assert ws["Bleu_1"] < 0.5 and ws["ROUGE_L"] < 0.5
    assert ptb_tokenize("A Ship, near the Pier.") == "a ship near the pier"


def test_per_sample_scores_and_multiple_references():
    s = score_captions_detailed(P, [[r, r.lower()] for r in R])
    assert len(s.per_sample) == len(P) and set(s.per_sample[0]) == set(GOLD_WHITESPACE)
    assert s.corpus["ROUGE_L"] == pytest.approx(sum(r["ROUGE_L"] for r in s.per_sample) / len(P))
    best = max(range(len(P)), key=lambda i: s.per_sample[i]["CIDEr"])
    assert 0 <= best < len(P)


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_predictions_and_references_do_not_crash(engine):
    got = score_captions(["", "a ship"], ["a ship in the port", "a ship"], engine=engine)
    assert 0.0 <= got["Bleu_1"] <= 1.0
    assert score_captions([""], [""], engine=engine)["CIDEr"] == 0.0
    # no reference word anywhere: pycocoevalcap's CIDEr fails, both engines report 0
    empty = score_captions_detailed(["a ship", "two ships"], [["", " "], ["\t"]], engine=engine)
    assert empty.corpus["CIDEr"] == 0.0 and all(r["CIDEr"] == 0.0 for r in empty.per_sample)


def test_mismatched_lengths_and_bad_options_are_clear_errors():
    with pytest.raises(SarlangError, match="2 predictions but 1 references"):
        score_captions(["a", "b"], ["a"])
    with pytest.raises(SarlangError, match="tokenize"):
        score_captions(["a"], ["a"], tokenize="spacy")
    with pytest.raises(SarlangError, match="no captions"):
        score_captions([], [])
    with pytest.raises(SarlangError, match="engine"):
        score_captions(["a"], ["a"], engine="turbo")


def test_pycocoevalcap_prints_nothing(capsys):
    score_captions(P, R, engine="reference")
    assert capsys.readouterr().out == ""


def test_ptb_rules_measured_on_corenlp():
    # each expectation below is what stanford-corenlp-3.4.1 gives, minus pycocoevalcap's punctuation
    cases = {
        "There's a ship (large) in the harbour, isn't it?":
            "there 's a ship -lrb- large -rrb- in the harbour is n't it",
        "Can't won't cannot.": "ca n't wo n't can not",
        "The 3.5 km-long pier; 1,000 ships e.g. tankers...": "the 3.5 km-long pier 1,000 ships e.g. tankers",
        "\"Large\" ships at the top-left.": "large ships at the top-left",
        "It is at point B.": "it is at point b",
        "The ships' wakes [dark] {calm} 50% $5": "the ships wakes -lsb- dark -rsb- -lcb- calm -rcb- 50 % $ 5",
        "-15 dB backscatter, 2:30 p.m. The end.": "-15 db backscatter 2:30 p.m. the end",
    }
    for text, want in cases.items():
        assert ptb_tokenize(text) == want, text


_FORMS = (
    "There are {n} {o} in the {p} of the image.",
    "The SAR image shows a {o} near the {p}, surrounded by water.",
    "A {o} (bright scatterer) is located at the {p}.",
    "This image contains {n} {o}; they're arranged in a row.",
    "It's a high-resolution SAR scene with {o}, e.g. docks, and roads.",
    "In the {p}, there's a {o} -- possibly a cargo ship.",
    "Two {o} aren't visible; the {p} is dark (low backscatter).",
    "\"{O}\" appear at the {p}, approx. {n} km wide...",
)


def _corpus():
    rng = random.Random(7)
    objs = ["ship", "ships", "aircraft", "oil tank", "storage tanks", "harbor", "bridge", "car", "vehicles",
            "tank", "boat", "vessels", "runway", "pier", "building", "port"]
    places = ["top-left", "top right", "bottom-left corner", "center", "centre", "upper part", "lower-right",
              "middle", "left side", "right edge"]
    out = []
    for i in range(120):
        o, p = rng.choice(objs), rng.choice(places)
        n = rng.choice(["2", "3", "10", "1,000", "3.5", "twelve", "several", "no"])
        out.append(_FORMS[i % len(_FORMS)].format(n=n, o=o, p=p, O=o.capitalize()))
    out += [
        "The image shows a harbour with several ships docked along the pier.",
        "A large vessel, approximately 200 m long, is moored at the dock.",
        "There's no aircraft on the runway, isn't there?",
        "Ships don't appear in the upper half; they're concentrated near the coast.",
        "The bridge spans 1,200 meters across the river.",
        "About 3.5% of the area is covered by oil tanks.",
        "Sentinel-1A VV-polarized image of an airport.",
        "A well-known port (Rotterdam) with many container ships.",
        "The ships' wakes are visible as dark lines.",
        "It can't be determined whether the object is a car or a truck.",
        "We'll see three aircraft parked at the apron, e.g. near the terminal.",
        "The image, i.e. the scene, contains a dam.",
        "A storage-tank farm with 12 tanks; some tanks are empty.",
        "Several boats ... and a ferry.",
        "The runway is oriented N-S, roughly 3 km long.",
        "Bright spots: ships; dark areas: calm water.",
        "Is there a ship? Yes!",
        "No ships are visible.",
        "The ratio is 1/2, and the angle is 45 degrees.",
        "Vehicles are parked at the lot at 5 p.m. on Jan. 5.",
        "The vessel's hull reflects strongly.",
        "A T-shaped pier and an L-shaped building.",
        "The scene is 512x512 pixels.",
        "There were 20-25 cars in the parking lot.",
        "Mr. Smith's boat is near St. Paul's dock.",
        "The 1990s-era terminal has two runways.",
        "An oil tank [circular] and a chimney {tall}.",
        "'Bright' targets are ships.",
        "\"Large\" ships are at the center.",
        "The image (taken by TerraSAR-X) shows a port.",
        "A ship, a boat, and a vessel.",
        "Ships are moving north-east; the sea is rough.",
        "There is 1 aircraft.",
        "The harbor is crowded -- ships everywhere.",
        "I'm not sure, but it's likely a bridge.",
        "They've built a new pier.",
        "You'd see a ship here.",
        "A high-rise building casts a long radar shadow.",
        "Ships: 4, tanks: 7, aircraft: 0.",
        "The backscatter is -15 dB in the water.",
        "Is the ship at the top-left?",
        "The U.S. Navy ships are docked.",
        "A city, etc.",
        "Scale: 1:1000.",
        "Overall, the scene is an industrial area.",
        "The object at the center is round, i.e., circular.",
        "Approximately 3.5 km of coastline is visible.",
        "A 10-meter-wide road crosses the image.",
        "Cars, trucks, and buses (vehicles) fill the road.",
        "What's in the image? A ship.",
        "Where's the bridge?",
        "Ship-to-shore cranes line the quay.",
        "The image has 2,500 pixels of water.",
        "Aircraft parked in rows of 6.",
        "The ship is 0.5 km from the shore.",
        "An airport with two runways/taxiways.",
        "Several ships; one tanker.",
        "The pier's end is bright.",
        "Ships wouldn't dock here.",
        "The tank is located at (120, 340).",
        "It is at point B.",
        "The plane, a Boeing 747, is parked.",
        "A harbor -- with ships -- and cranes.",
        "Water is dark; land is bright!",
        "Boats (small) and ships (large).",
        "The storage tanks' roofs are round.",
        "There are many cars in the parking lot near the building on the right.",
        "Two bridges cross the river in the middle of the image.",
        "The image depicts an airport; aircraft are parked near the terminal.",
        "A ship is sailing in open water, leaving a wake behind it.",
        "Oil tanks, arranged in a grid, occupy the lower-left corner.",
        "The coastline runs from the top-left to the bottom-right.",
        "Ships anchored offshore appear as bright dots.",
        "The river is narrow (about 50 m wide).",
        "Roughly 40% of the image shows farmland.",
        "The scene includes a dam, a reservoir, and a small town.",
        "Several aircraft -- at least five -- are parked.",
        "It's unclear if these're ships.",
        "Can't tell.",
        "A ship.",
    ]
    return out


def _java_tokens(sentences):
    """Token lists from the real CoreNLP jar, run the way pycocoevalcap runs it."""
    import pycocoevalcap.tokenizer.ptbtokenizer as mod
    jar = os.path.join(os.path.dirname(mod.__file__), mod.STANFORD_CORENLP_3_4_1_JAR)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "captions.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(s.replace("\n", " ") for s in sentences))
        out = subprocess.run(["java", "-cp", jar, "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines",
                              "-lowerCase", path], capture_output=True, timeout=120, check=True).stdout
    lines = out.decode("utf-8").split("\n")
    return [[w for w in line.rstrip().split(" ") if w and w not in PUNCTUATIONS] for line in lines[:len(sentences)]]


@pytest.mark.skipif(shutil.which("java") is None, reason="java is not on PATH: cannot run CoreNLP's PTBTokenizer")
def test_tokenizer_agrees_with_corenlp_jar():
    sentences = _corpus()
    assert len(sentences) >= 200
    want = _java_tokens(sentences)
    got = [ptb_tokens(s) for s in sentences]
    diffs = [(s, w, g) for s, w, g in zip(sentences, want, got) if w != g]
    assert not diffs, f"{len(diffs)}/{len(sentences)} differ, first: {diffs[:3]}"


# --- the fast engine against pycocoevalcap's scorers ------------------------------------------

def _assert_engines_agree(preds, refs, tokenize="whitespace"):
    fast = score_captions_detailed(preds, refs, tokenize=tokenize, engine="fast")
    ref = score_captions_detailed(preds, refs, tokenize=tokenize, engine="reference")
    assert set(fast.corpus) == set(ref.corpus) == set(CAPTION_KEYS)
    assert len(fast.per_sample) == len(ref.per_sample) == len(preds)
    worst = {}
    for k in CAPTION_KEYS:
        worst[k] = max([abs(fast.corpus[k] - ref.corpus[k])]
                       + [abs(a[k] - b[k]) for a, b in zip(fast.per_sample, ref.per_sample)])
        assert worst[k] <= TOL, (k, worst[k])
    return worst


@pytest.mark.parametrize("tokenize", ["whitespace", "ptb"])
def test_fast_equals_reference_on_goldens(tokenize):
    _assert_engines_agree(P, R, tokenize)
    _assert_engines_agree(P, [[r, r.lower(), p] for p, r in zip(P, R)], tokenize)


_WORDS = ["a", "the", "ship", "ships", "harbor", "Ship", "ship.", "in", "of", "bridge", "two", "tank"]
_caption = st.lists(st.sampled_from(_WORDS), max_size=9).flatmap(
    lambda ws: st.sampled_from([" ", " ", " ", "  ", "\t", " \n"]).map(lambda sep: sep.join(ws)))
_caption = st.one_of(_caption, st.sampled_from(["", " ", "ship", "ship ship ship", " the ship "]))
_sample = st.tuples(_caption, st.lists(_caption, min_size=1, max_size=4))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_sample, min_size=1, max_size=12))
def test_fast_equals_reference_on_random_corpora(samples):
    preds = [p for p, _ in samples]
    refs = [r for _, r in samples]
    _assert_engines_agree(preds, refs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_sample, min_size=1, max_size=8))
def test_fast_equals_reference_on_random_corpora_ptb(samples):
    _assert_engines_agree([p for p, _ in samples], [r for _, r in samples], "ptb")


def _realistic(n, seed=3):
    """Caption-like predictions and 1-3 references each, from the tokenizer corpus's words."""
    rng = random.Random(seed)
    sentences = _corpus()
    preds, refs = [], []
    for _ in range(n):
        ref = " ".join(rng.sample(sentences, rng.choice([1, 1, 2, 3])))
        words = ref.split()
        keep = max(3, int(len(words) * rng.uniform(0.5, 1.3)))
        pred = [w if rng.random() < 0.6 else rng.choice(words) for w in words[:keep]]
        others = [" ".join(rng.sample(sentences, rng.choice([1, 2]))) for _ in range(rng.choice([0, 0, 1, 2]))]
        preds.append(" ".join(pred) if rng.random() > 0.01 else "")
        refs.append([ref] + others)
    return preds, refs


@pytest.mark.parametrize("tokenize", ["whitespace", "ptb"])
def test_fast_equals_reference_on_a_realistic_set(tokenize):
    preds, refs = _realistic(500)
    worst = _assert_engines_agree(preds, refs, tokenize)
    assert max(worst.values()) <= TOL


def _lcs_reference(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(table[i - 1][j], table[i][j - 1])
    return table[len(a)][len(b)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 4), max_size=30), st.lists(st.integers(0, 4), max_size=30)),
                min_size=1, max_size=20))
def test_lcs_lengths_match_the_textbook_dynamic_programme(pairs):
    def flat(seqs):
        lens = np.array([len(x) for x in seqs], dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64)
        return np.array([v for x in seqs for v in x], dtype=np.int64), lens, starts
    got = lcs_lengths(*flat([a for a, _ in pairs]), *flat([b for _, b in pairs]))
    assert got.tolist() == [_lcs_reference(a, b) for a, b in pairs]


def test_cli_engine_flag(tmp_path, capsys):
    import json

    from sarlang_core.cli import main
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(json.dumps({"label": r, "predict": p}) for p, r in zip(P, R)) + "\n")
    outs = {}
    for engine in ENGINES:
        assert main(["bench", "score-captions", str(f), "--engine", engine]) == 0
        outs[engine] = json.loads(capsys.readouterr().out)
        assert outs[engine]["engine"] == engine
    for k in CAPTION_KEYS:
        assert abs(outs["fast"][k] - outs["reference"][k]) <= TOL


# --- the PTB tokenizer's fast path for plain words ----------------------------------------------

def _ptb_tokens_without_fast_path(text):
    line = text.replace("\n", " ").translate(ptb_tokenizer._UNICODE)
    out = []
    for chunk in ptb_tokenizer.re.finditer(r"\S+", line):
        ptb_tokenizer._scan(line, chunk.start(), chunk.end(), out)
    return [t for t in (t.lower() for t in out) if t not in PUNCTUATIONS]


_ptb_text = st.lists(st.one_of(
    st.sampled_from(["cannot", "Gonna", "WANNA", "isn't", "U.S.", "p.m.", "Mr.", "Corp.", "The", "no", "3.5", "1,000",
                     "'t", "'tis", "AT&T", "www.x.com", "a@b.com", "-15", "+3", "2:30", "e.g.", "etc.", "ship", "B"]),
    st.text(alphabet="aAbZ09 .,;:'\"-/&()[]!?\u201c\u2019\u2014\u00a0\u00e9_", max_size=6)),
    max_size=10).flatmap(lambda parts: st.sampled_from([" ", "  ", ""]).map(lambda sep: sep.join(parts)))


@settings(max_examples=400, deadline=None)
@given(_ptb_text)
def test_ptb_plain_word_fast_path_changes_nothing(text):
    assert ptb_tokens(text) == _ptb_tokens_without_fast_path(text)
