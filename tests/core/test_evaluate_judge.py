"""The judge path end to end against the real chat-completions test server on 127.0.0.1."""

import threading

import pytest

from sarlang_core.errors import CancelledError
from sarlang_core.evaluate import JUDGE_PROMPT, LLMJudge, VerdictCache, VqaSample, score_vqa
from sarlang_core.progress import CancelToken
from support.chat_server import serve
from support.ports import dead_port

OPEN = [VqaSample(f"s{i}", f"What shape is object {i}?", "oval", f"circular {i}", "general") for i in range(4)]
RULED = [VqaSample("r1", "Is there a ship?", "yes", "yes", "identification"),
         VqaSample("r2", "How many?", "3", "4", "counting")]


def _judge(ep, tmp_path, **kw):
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 5)
    return LLMJudge(ep.url, "gpt-4o-mini", api_key="k", cache=VerdictCache(tmp_path / "v.sqlite"), backoff=0.01, **kw)


RELEASED_TEXT = ("Question: what shape?\nGround Truth Answer: oval\nPredicted Answer: circular\nDoes the predicted "
                 "answer match the ground truth? Answer 1 for match and 0 for not match. Use semantic meaning not "
                 "exact match. Synonyms are also treated as a match, e.g., football and soccer, playground and ground "
                 "track field, building and rooftop, pond and swimming pool. Do not explain the reason.\n")


def test_paper_mode_sends_exactly_the_released_scripts_request(tmp_path):
    with serve() as ep:
        ep.plan = [{"pieces": ["1"]}]
        s = score_vqa([VqaSample("s", "What Shape?", "Oval", "Circular", "general")], judge=_judge(ep, tmp_path))
        body = ep.posts()[0]["body"]
    assert s.correct == 1
    # Evaluate_VQA.py: lower-cased question, truth and prediction; one text part; model and max_tokens only
    assert body == {"model": "gpt-4o-mini", "max_tokens": 100,
                    "messages": [{"role": "user", "content": [{"type": "text", "text": RELEASED_TEXT}]}]}


def test_the_papers_printed_wording_is_a_named_alternative(tmp_path):
    with serve() as ep:
        ep.plan = [{"pieces": ["1"]}]
        v = _judge(ep, tmp_path, prompt="paper-text").judge("What shape?", "oval", "circular")
        body = ep.posts()[0]["body"]
    assert v.verdict == 1 and v.reply == "1" and not v.cached and v.error is None
    assert body["model"] == "gpt-4o-mini" and body["max_tokens"] == 100 and body["temperature"] == 0.0
    assert body["messages"] == [{"role": "user", "content": JUDGE_PROMPT.format(
        question="What shape?", ground_truth="oval", prediction="circular")}]


def test_verdicts_are_cached_per_prompt(tmp_path):
    with serve() as ep:
        ep.plan = [{"pieces": ["1"]}, {"pieces": ["0"]}]
        a = _judge(ep, tmp_path).judge("q", "oval", "circular")
        b = _judge(ep, tmp_path, prompt="paper-text").judge("q", "oval", "circular")
        c = _judge(ep, tmp_path).judge("q", "oval", "circular")
        assert len(ep.posts()) == 2
    assert (a.verdict, b.verdict, c.verdict, c.cached) == (1, 0, 1, True)


def test_rules_first_then_judge_then_cache(tmp_path):
    with serve() as ep:
        ep.plan = [{"pieces": ["1"]}, {"pieces": ["**0**"]}, {"pieces": ["Answer: 1"]}, {"pieces": ["0."]}]
        events = []
        s = score_vqa(RULED + OPEN, judge=_judge(ep, tmp_path), concurrency=1, progress=events.append)
        assert len(ep.posts()) == 4                     # the two rule-decided items never reach the judge
        again = score_vqa(RULED + OPEN, judge=_judge(ep, tmp_path), concurrency=3)
        assert len(ep.posts()) == 4                     # second run: all from the cache
    assert [v.correct for v in s.verdicts] == [True, False, True, False, True, False]
    assert s.correct == 3 and s.undecided == 0 and s.judge_calls == 4
    # the paper mode sends lower-cased text, as VRSBench's script did
    assert [v.how for v in again.verdicts[2:]] == ["cached"] * 4 and again.correct == 3
    assert events[-1].stage == "done" and any(e.stage == "judge" for e in events)


def test_errors_timeouts_and_nonsense_become_undecided_and_the_run_goes_on(tmp_path):
    with serve() as ep:
        ep.plan = [{"status": 500}, {"delay": 3.0}, {"pieces": ["I cannot judge this."]}, {"pieces": ["1"]}]
        s = score_vqa(RULED + OPEN, judge=_judge(ep, tmp_path, timeout=1), concurrency=1)
        hows = [v.how for v in s.verdicts[2:]]
        assert hows == ["judge-error", "judge-error", "judge-error", "judge"]
        assert s.verdicts[4].reply == "I cannot judge this." and "unreadable" in s.verdicts[4].error
        assert s.undecided == 3 and s.correct == 2 and s.accuracy == pytest.approx(2 / 6)
        assert s.accuracy_decided == pytest.approx(2 / 3)
        # nothing undecided was cached: a re-run asks again for exactly those three
        before = len(ep.posts())
        ep.plan = [{"pieces": ["0"]}] * 3
        again = score_vqa(RULED + OPEN, judge=_judge(ep, tmp_path), concurrency=2)
        assert len(ep.posts()) - before == 3 and again.undecided == 0 and again.cache_hits == 1


def test_retry_after_a_500_then_success(tmp_path):
    with serve() as ep:
        ep.plan = [{"status": 503}, {"pieces": ["1"]}]
        v = _judge(ep, tmp_path, max_retries=2).judge("q", "oval", "circular")
        assert v.verdict == 1 and len(ep.posts()) == 2


def test_cancel_stops_the_run(tmp_path):
    token = CancelToken()
    with serve() as ep:
        ep.plan = [{"delay": 0.3, "pieces": ["1"]}] * 4
        timer = threading.Timer(0.1, token.cancel)
        timer.start()
        with pytest.raises(CancelledError):
            score_vqa(OPEN, judge=_judge(ep, tmp_path), concurrency=1, cancel=token)
        timer.cancel()
        assert len(ep.posts()) < 4


def test_cache_file_is_shared_between_threads_and_survives_reopen(tmp_path):
    cache = VerdictCache(tmp_path / "v.sqlite")
    keys = [VerdictCache.key("q", str(i), "p", "m") for i in range(50)]

    def put(chunk):
        for k in chunk:
            cache.put(k, 1, "1", "m")
    threads = [threading.Thread(target=put, args=(keys[i::5],)) for i in range(5)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    cache.close()
    again = VerdictCache(tmp_path / "v.sqlite")
    assert len(again) == 50 and again.get(keys[7]) == (1, "1")
    assert VerdictCache.key("a", "bc", "d", "m") != VerdictCache.key("ab", "c", "d", "m")


def test_an_unreachable_judge_is_counted_and_not_asked_forever(tmp_path):
    from sarlang_core.evaluate.vqa_metrics import GIVE_UP_AFTER, judge_failure_line
    many = [VqaSample(f"s{i}", f"What shape is {i}?", "oval", f"round {i}", "general") for i in range(40)]
    with dead_port() as port:
        judge = LLMJudge(f"http://127.0.0.1:{port}/v1", "gpt-4o-mini", api_key="k", max_retries=0, timeout=2,
                         cache=VerdictCache(tmp_path / "v.sqlite"))
        s = score_vqa(RULED + many, judge=judge, concurrency=2)
    assert s.judge_failed == 40 and s.undecided == 40 and s.correct == 1
    assert s.judge_calls < GIVE_UP_AFTER + 2 * 2          # stopped asking after the first failures in a row
    assert "connection refused" in s.judge_error and all(v.unreachable for v in s.verdicts[2:])
    line = judge_failure_line(s, judge.endpoint)
    assert judge.endpoint in line and "40 answer(s)" in line and "--judge offline" in line


def test_an_unreadable_reply_is_not_an_unreachable_judge(tmp_path):
    with serve() as ep:
        ep.plan = [{"pieces": ["I cannot judge this."]}] * 4
        s = score_vqa(OPEN, judge=_judge(ep, tmp_path), concurrency=1)
    assert s.undecided == 4 and s.judge_failed == 0 and s.judge_error is None
