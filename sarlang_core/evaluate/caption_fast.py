"""BLEU-1..4, ROUGE_L and CIDEr(-D) with the numbers of pycocoevalcap 1.2, computed on arrays.

Same definitions as ``Bleu(4)``, ``Rouge()`` and ``Cider()`` (see ``caption_metrics``), down to the
quirks that change figures:

* BLEU and CIDEr split on any whitespace (``str.split()``); ROUGE_L splits on single spaces
  (``str.split(" ")``), so ``""`` is one empty token and double spaces make empty tokens.
* BLEU: counts clipped by the maximum count over the references, the "closest" reference length
  (ties go to the shorter one), ``tiny = 1e-15`` / ``small = 1e-9`` in every ratio; per-sample
  BLEU-n uses the sample's own brevity penalty, the corpus one the summed lengths.
* ROUGE_L: best precision and best recall over the references taken separately, beta = 1.2.
* CIDEr: document frequency = number of samples whose references hold the n-gram; idf weight
  ``log(number of samples) - log(max(1, df))``; test weights clipped to the reference's; the
  Gaussian length penalty (sigma 6) uses the number of *bigrams* of each caption (pycocoevalcap
  counts ``length`` at n-gram index 1); mean over n = 1..4, over references, times 10.

How: every word is interned to an integer, n-grams to integers order by order (an n-gram id is
the id of its (n-1)-gram prefix paired with its last word), one sort gives the count of every
n-gram in every caption, and the matches between a prediction and its references are found by
binary search. ROUGE's longest common subsequence runs row by row over batches of caption pairs
(``L[i][j] = max(L[i-1][j], cummax_k<=j (match(i,k) ? L[i-1][k-1] + 1 : 0))``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain
from typing import Dict, List, Sequence

import numpy as np

__all__ = ["FastCaptionScores", "fast_caption_scores", "lcs_lengths"]

N_MAX = 4
SIGMA = 6.0
BETA = 1.2
_TINY = 1e-15    # pycocoevalcap BleuScorer: "so that if guess is 0 still return 0"
_SMALL = 1e-9
_LCS_CELLS = 1 << 21   # DP cells per batch of caption pairs (keeps the working set in cache)


@dataclass
class FastCaptionScores:
    bleu: List[float]            # corpus BLEU-1..4
    bleu_each: np.ndarray        # (4, samples)
    rouge: float
    rouge_each: np.ndarray       # (samples,)
    cider: float
    cider_each: np.ndarray       # (samples,)


def _intern(token_lists: Sequence[List[str]], vocab: Dict[str, int]) -> np.ndarray:
    flat = list(chain.from_iterable(token_lists))
    for w in dict.fromkeys(flat):
        if w not in vocab:
            vocab[w] = len(vocab)
    return np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))


def _offsets(lens: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(lens), dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    return starts


def _ngram_counts(ids: np.ndarray, lens: np.ndarray, vocab_size: int):
    """Distinct (sentence, n-gram) pairs with their counts, sorted by sentence then n-gram.

    Returns ``sent, gram, count, order_of_gram, total, first, by_first``: n-gram ids are global
    over n = 1..4 (``total`` of them) and ``order_of_gram[g]`` is n - 1; ``first`` ranks each
    pair by its first occurrence in pycocoevalcap's order (n, then position), and ``by_first``
    lists the pairs in that order (sums taken in it give the reference's last bits)."""
    n_sent = len(lens)
    sent_of = np.repeat(np.arange(n_sent, dtype=np.int64), lens)
    remaining = np.repeat(_offsets(lens) + lens, lens) - np.arange(len(ids), dtype=np.int64)
    grams, sents = [ids], [sent_of]
    sizes = [vocab_size]
    cur = ids
    for k in range(2, N_MAX + 1):
        at = np.flatnonzero(remaining >= k)
        if len(at) == 0:
            break
        uniq, inv = np.unique(cur[at] * vocab_size + ids[at + k - 1], return_inverse=True)
        nxt = np.full(len(ids), -1, dtype=np.int64)
        nxt[at] = inv
        cur = nxt
        grams.append(inv + sum(sizes))
        sents.append(sent_of[at])
        sizes.append(len(uniq))
    total = int(sum(sizes))
    order_of_gram = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    # occurrences n-major, then sentence, then position: within one (sentence, n) they come in
    # the order pycocoevalcap's precook() inserts them into its dict
    key = np.concatenate(sents) * total + np.concatenate(grams)
    perm = np.argsort(key)   # the default sort (SIMD); the first occurrence is the least index
    sorted_key = key[perm]
    starts = np.flatnonzero(np.concatenate(([len(key) > 0], sorted_key[1:] != sorted_key[:-1])))
    ukey = sorted_key[starts]
    count = np.diff(np.append(starts, len(key)))
    first = np.minimum.reduceat(perm, starts)
    is_first = np.zeros(len(key), dtype=bool)
    is_first[first] = True
    entry_at = np.empty(len(key), dtype=np.int64)
    entry_at[first] = np.arange(len(first))
    by_first = entry_at[is_first]
    return ukey // total, ukey % total, count, order_of_gram, total, first, by_first


def _row_sums(index: np.ndarray, weights: np.ndarray, rows: int) -> np.ndarray:
    """(rows, 4) sums of ``weights`` by ``index = row * 4 + order``."""
    return np.bincount(index, weights=weights, minlength=rows * N_MAX).reshape(rows, N_MAX)


def _bleu(n: int, hyp_len, ref_len, ref_sample, ref_start, hyp_cnt, hyp_order_sample, matched_max):
    # the "closest" reference length: smallest |ref - hyp|, the shorter reference on a tie
    big = int(max(hyp_len.max(initial=0), ref_len.max(initial=0))) + 1
    closest = np.abs(ref_len - hyp_len[ref_sample]) * big + ref_len
    reflen = np.minimum.reduceat(closest, ref_start) % big
    correct = np.bincount(hyp_order_sample, weights=np.minimum(hyp_cnt, matched_max),
                          minlength=n * N_MAX).reshape(n, N_MAX)
    guess = np.maximum(0, hyp_len[:, None] - np.arange(N_MAX)[None, :])
    each = np.empty((N_MAX, n))
    acc = np.ones(n)
    for k in range(N_MAX):
        acc = acc * ((correct[:, k] + _TINY) / (guess[:, k] + _SMALL))
        e = 1.0 / (k + 1)   # Python's pow, not numpy's vectorised one: same last bits as the reference
        each[k] = [a ** e for a in acc.tolist()]
    ratio = (hyp_len + _TINY) / (reflen + _SMALL)
    short = np.flatnonzero(ratio < 1)
    if len(short):
        bp = np.array([math.exp(1 - 1 / r) for r in ratio[short].tolist()])
        each[:, short] *= bp
    # corpus BLEU, on the summed counts (plain Python floats, as pycocoevalcap does it)
    tot_correct = [int(c) for c in correct.sum(axis=0).round().astype(np.int64)]
    tot_guess = [int(g) for g in guess.sum(axis=0)]
    testlen, total_ref = int(hyp_len.sum()), int(reflen.sum())
    corpus, acc_c = [], 1.0
    for k in range(N_MAX):
        acc_c *= float(tot_correct[k] + _TINY) / (tot_guess[k] + _SMALL)
        corpus.append(acc_c ** (1.0 / (k + 1)))
    ratio_c = (testlen + _TINY) / (total_ref + _SMALL)
    if ratio_c < 1:
        corpus = [b * math.exp(1 - 1 / ratio_c) for b in corpus]
    return corpus, each


def _cider(n, n_ref_sent, hyp_len, ref_len, ref_sample, ref_start, ref_count_per_sample,
           sent, gram, count, order, first, by_first, hyp_pos, ref_rows, total_grams, multi_ref):
    """``hyp_pos``: for each reference entry, the index of the same n-gram in its sample's
    prediction entries or -1; entries ``sent < n`` are the predictions (sentence = sample)."""
    n_hyp = len(sent) - len(hyp_pos)
    # document frequency over the reference set, once per sample
    ref_gram = gram[n_hyp:]
    if multi_ref:
        ref_gram_once = np.unique(ref_sample[ref_rows] * total_grams + ref_gram) % total_grams
    else:
        ref_gram_once = ref_gram
    if len(ref_gram_once) == 0:
        return 0.0, np.zeros(n)   # no reference words: pycocoevalcap fails, we report 0
    df = np.bincount(ref_gram_once, minlength=total_grams)
    # tf-idf weights: idf only takes len(df values) distinct values; squares by C pow() as
    # pycocoevalcap's pow(x, 2) (it differs from x * x in the last bit now and then)
    df_values, df_index = np.unique(df[gram], return_inverse=True)
    idf = np.log(float(n)) - np.log(np.maximum(1.0, df_values.astype(np.float64)))
    vec = count.astype(np.float64) * idf[df_index]
    square = np.array([pow(w, 2) for w in idf.tolist()])[df_index]
    many = np.flatnonzero(count != 1)
    square[many] = [pow(v, 2) for v in vec[many].tolist()]
    norm = np.sqrt(_row_sums((sent * N_MAX + order)[by_first], square[by_first], n + n_ref_sent))
    hyp_norm, ref_norm = norm[:n], norm[n:]
    # clipped dot products, prediction x each of its references, summed in the prediction's order
    hit = np.flatnonzero(hyp_pos >= 0)
    hp = hyp_pos[hit]
    hit_order = np.argsort(ref_rows[hit] * (int(first.max()) + 1) + first[hp])   # keys are distinct
    hit, hp = hit[hit_order], hp[hit_order]
    ref_vec = vec[n_hyp:][hit]
    contrib = np.minimum(vec[hp], ref_vec) * ref_vec
    dot = _row_sums(ref_rows[hit] * N_MAX + order[hp], contrib, n_ref_sent)
    both = (hyp_norm[ref_sample] != 0) & (ref_norm != 0)
    dot = np.where(both, dot / np.where(both, hyp_norm[ref_sample] * ref_norm, 1.0), dot)
    # Gaussian penalty on the difference in bigram counts (pycocoevalcap's "length")
    delta = np.maximum(hyp_len - 1, 0)[ref_sample] - np.maximum(ref_len - 1, 0)
    uniq, inv = np.unique(delta, return_inverse=True)
    table = np.array([np.e ** (-(float(d) ** 2) / (2 * SIGMA ** 2)) for d in uniq.tolist()])
    dot = dot * table[inv][:, None]
    # summed reference by reference, in order (np.add.reduceat would pair them differently)
    per_sample = dot[ref_start]
    refs_of = ref_count_per_sample.astype(np.int64)
    for j in range(1, int(refs_of.max())):
        more = np.flatnonzero(refs_of > j)
        per_sample[more] += dot[ref_start[more] + j]
    each = ((((per_sample[:, 0] + per_sample[:, 1]) + per_sample[:, 2]) + per_sample[:, 3]) / N_MAX
            / ref_count_per_sample * 10.0)
    return float(np.mean(each)), each


def lcs_lengths(a_ids: np.ndarray, a_lens: np.ndarray, a_start: np.ndarray,
                b_ids: np.ndarray, b_lens: np.ndarray, b_start: np.ndarray) -> np.ndarray:
    """Longest common subsequence length of each pair (a_i, b_i) of integer token sequences,
    given as flat token arrays with per-pair lengths and start offsets."""
    swap = a_lens > b_lens   # loop over the shorter sequence, vectorise over the longer one
    la, lb = np.where(swap, b_lens, a_lens), np.where(swap, a_lens, b_lens)
    sa, sb = np.where(swap, b_start, a_start), np.where(swap, a_start, b_start)
    out = np.zeros(len(la), dtype=np.int64)
    order = np.lexsort((lb, la))
    widths = lb[order].tolist()
    i = 0
    while i < len(order):
        # a batch of pairs with similar lengths, its padded rows under the cell budget
        j, width = i + 1, max(1, widths[i])
        while j < len(order) and (j - i + 1) * max(width, widths[j]) <= _LCS_CELLS:
            width = max(width, widths[j])
            j += 1
        batch = order[i:j]
        out[batch] = _lcs_batch(a_ids, b_ids, swap[batch], la[batch], lb[batch], sa[batch], sb[batch])
        i = j
    return out


def _gather(ids_a, ids_b, use_b, lens, starts, pad):
    rows = len(lens)
    width = int(lens.max(initial=0))
    mat = np.full((rows, max(width, 1)), pad, dtype=np.int64)
    if width:
        r = np.repeat(np.arange(rows), lens)
        c = np.arange(int(lens.sum())) - np.repeat(_offsets(lens), lens)
        src = np.repeat(starts, lens) + c
        from_b = np.repeat(use_b, lens)
        vals = np.empty(len(src), dtype=np.int64)
        vals[~from_b] = ids_a[src[~from_b]]
        vals[from_b] = ids_b[src[from_b]]
        mat[r, c] = vals
    return mat, width


def _lcs_batch(a_ids, b_ids, swap, la, lb, sa, sb):
    # the short side comes from b where swapped, the long side from a
    short, rows = _gather(a_ids, b_ids, swap, la, sa, -1)
    long_, width = _gather(b_ids, a_ids, swap, lb, sb, -2)
    m = len(la)
    prev = np.zeros((m, width + 1), dtype=np.int32)
    for i in range(rows):
        cand = np.where(short[:, i:i + 1] == long_[:, :width], prev[:, :-1] + 1, 0).astype(np.int32, copy=False)
        np.maximum.accumulate(cand, axis=1, out=cand)
        np.maximum(prev[:, 1:], cand, out=prev[:, 1:])
    return prev[np.arange(m), lb]


def _rouge(preds: Sequence[str], refs: Sequence[Sequence[str]], ref_sample: np.ndarray,
           ref_start: np.ndarray):
    vocab: Dict[str, int] = {}
    hyp_tok = [p.split(" ") for p in preds]
    ref_tok = [r.split(" ") for rs in refs for r in rs]
    hyp_ids, ref_ids = _intern(hyp_tok, vocab), _intern(ref_tok, vocab)
    hyp_len = np.fromiter(map(len, hyp_tok), dtype=np.int64, count=len(hyp_tok))
    ref_len = np.fromiter(map(len, ref_tok), dtype=np.int64, count=len(ref_tok))
    lcs = lcs_lengths(hyp_ids, hyp_len[ref_sample], _offsets(hyp_len)[ref_sample],
                      ref_ids, ref_len, _offsets(ref_len)).astype(np.float64)
    prec = np.maximum.reduceat(lcs / hyp_len[ref_sample].astype(np.float64), ref_start)
    rec = np.maximum.reduceat(lcs / ref_len.astype(np.float64), ref_start)
    b2 = BETA ** 2
    ok = (prec != 0) & (rec != 0)
    score = np.where(ok, ((1 + b2) * prec * rec) / np.where(ok, rec + b2 * prec, 1.0), 0.0)
    return float(np.mean(score)), score


def fast_caption_scores(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> FastCaptionScores:
    """Scores of ``preds[i]`` against ``refs[i]`` (each a non-empty list of strings), exactly as
    pycocoevalcap's Bleu(4), Rouge() and Cider() compute them on the same strings."""
    n = len(preds)
    per_sample = np.fromiter(map(len, refs), dtype=np.int64, count=n)
    ref_sample = np.repeat(np.arange(n, dtype=np.int64), per_sample)
    ref_start = _offsets(per_sample)
    n_ref = len(ref_sample)

    vocab: Dict[str, int] = {}
    hyp_tok = [p.split() for p in preds]
    ref_tok = [r.split() for rs in refs for r in rs]
    ids = _intern(hyp_tok + ref_tok, vocab)
    lens = np.fromiter(map(len, chain(hyp_tok, ref_tok)), dtype=np.int64, count=n + n_ref)
    hyp_len, ref_len = lens[:n], lens[n:]
    sent, gram, count, order_of_gram, total, first, by_first = _ngram_counts(ids, lens, max(1, len(vocab)))
    order = order_of_gram[gram]

    # match each reference entry to the same n-gram in its sample's prediction
    n_hyp_entries = int(np.searchsorted(sent, n))
    hyp_key = sent[:n_hyp_entries] * total + gram[:n_hyp_entries]
    ref_rows = sent[n_hyp_entries:] - n
    ref_key = ref_sample[ref_rows] * total + gram[n_hyp_entries:]
    pos = np.searchsorted(hyp_key, ref_key)
    if n_hyp_entries:
        pos_c = np.minimum(pos, n_hyp_entries - 1)
        found = (pos < n_hyp_entries) & (hyp_key[pos_c] == ref_key)
    else:   # every prediction is empty
        pos_c, found = pos, np.zeros(len(ref_key), dtype=bool)
    hyp_pos = np.where(found, pos_c, -1)

    ref_cnt = count[n_hyp_entries:]
    matched_max = np.zeros(n_hyp_entries, dtype=np.int64)
    np.maximum.at(matched_max, hyp_pos[found], ref_cnt[found])
    hyp_order_sample = sent[:n_hyp_entries] * N_MAX + order[:n_hyp_entries]
    bleu, bleu_each = _bleu(n, hyp_len, ref_len, ref_sample, ref_start, count[:n_hyp_entries],
                            hyp_order_sample, matched_max)

    cider, cider_each = _cider(n, n_ref, hyp_len, ref_len, ref_sample, ref_start,
                               per_sample.astype(np.float64), sent, gram, count, order, first,
                               by_first, hyp_pos, ref_rows, total, bool((per_sample > 1).any()))

    rouge, rouge_each = _rouge(preds, refs, ref_sample, ref_start)
    return FastCaptionScores(bleu, bleu_each, rouge, rouge_each, cider, cider_each)
