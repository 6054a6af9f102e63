"""Text-generation metrics, implemented here so their variants are explicit.

* **B-Moses**: corpus-level BLEU-4 as ``multi-bleu.perl`` computes it: case-sensitive,
  whitespace tokens (after the Moses-style split of punctuation done by :func:`tokenize`), n-gram
  counts summed over the corpus, no smoothing, one brevity penalty for the corpus. (NNGen's
  published 16.4 is this variant.)
* **B-Norm**: the sentence-level BLEU-4 that Tao et al. (ICSE'21) found best aligned with human
  judgement: lower-cased, smoothed as Lin & Och (2004) (+1 to numerator and denominator for
  n > 1), brevity penalty per sentence, averaged over sentences, reported in [0, 100].
* **ROUGE-L**: F-measure (beta = 1.2, as in the ROUGE-1.5.5 default of py-rouge) of the longest
  common subsequence per sentence, lower-cased, averaged, in [0, 100].
* **METEOR (exact)**: Banerjee & Lavie (2005) with the *exact-match module only* (no Porter
  stem, no WordNet synonyms: neither is available offline here), lower-cased: unigram P and R,
  Fmean = P R / (alpha P + (1 - alpha) R) with alpha = 0.9, penalty = 0.5 (chunks / matches)^3,
  score = Fmean (1 - penalty), averaged over sentences, in [0, 100]. Reads lower than METEOR
  with stems and synonyms; logged as ``meteor_exact`` so it is not mistaken for it.
* **prefix accuracy**: ``subject_prefix(hyp) == subject_prefix(ref)`` (exact, case-insensitive),
  credited only when the hypothesis is not junk (:func:`junk_reason`): ``"net/ice: https://x>"``
  names the right subsystem but is not a subject, so it earns no prefix credit.
* **junk rate**: share of hypotheses that :func:`junk_reason` rejects: empty after the prefix,
  URLs or e-mail addresses, trailer fragments (``Signed-off-by:``, ``Link:``, ...), text cut off
  after "the"/"of"/"to"..., repeated text.
"""

import functools
import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence

from kforge.git.message import subject_prefix

_TOK = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str, lower: bool = False) -> list[str]:
    t = text.lower() if lower else text
    return _TOK.findall(t)


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _stats(hyp: list[str], ref: list[str], max_n: int = 4) -> tuple[list[int], list[int]]:
    match, total = [], []
    for n in range(1, max_n + 1):
        h, r = _ngrams(hyp, n), _ngrams(ref, n)
        match.append(sum(min(c, r[g]) for g, c in h.items()))
        total.append(max(len(hyp) - n + 1, 0))
    return match, total


def bleu_moses(hyps: Sequence[str], refs: Sequence[str], max_n: int = 4) -> float:
    """Corpus BLEU-4, case-sensitive, unsmoothed (multi-bleu.perl)."""
    _same_len(hyps, refs)
    match, total = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for h, r in zip(hyps, refs, strict=True):
        ht, rt = tokenize(h), tokenize(r)
        m, t = _stats(ht, rt, max_n)
        match = [a + b for a, b in zip(match, m, strict=True)]
        total = [a + b for a, b in zip(total, t, strict=True)]
        hyp_len += len(ht)
        ref_len += len(rt)
    if hyp_len == 0 or min(match) == 0:
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(match, total, strict=True)) / max_n
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return 100.0 * bp * math.exp(log_p)


def sentence_bleu_norm(hyp: str, ref: str, max_n: int = 4) -> float:
    ht, rt = tokenize(hyp, lower=True), tokenize(ref, lower=True)
    if not ht or not rt:
        return 0.0
    m, t = _stats(ht, rt, max_n)
    log_p = 0.0
    for n in range(max_n):
        num, den = (m[n], t[n]) if n == 0 else (m[n] + 1, t[n] + 1)
        if num == 0 or den == 0:
            return 0.0
        log_p += math.log(num / den)
    bp = 1.0 if len(ht) > len(rt) else math.exp(1 - len(rt) / len(ht))
    return 100.0 * bp * math.exp(log_p / max_n)


@functools.lru_cache(maxsize=65536)
def ngram_profile(text: str, max_n: int = 4) -> tuple[int, tuple[Counter, ...]]:
    """(token count, n-gram counters for n = 1..max_n) of a lower-cased text; cached (retrieval re-ranking)."""
    toks = tokenize(text, lower=True)
    return len(toks), tuple(_ngrams(toks, n) for n in range(1, max_n + 1))


def bleu_norm_profiles(hyp: tuple[int, tuple[Counter, ...]], ref: tuple[int, tuple[Counter, ...]]) -> float:
    """:func:`sentence_bleu_norm` from two :func:`ngram_profile` results."""
    (hl, hg), (rl, rg) = hyp, ref
    if not hl or not rl:
        return 0.0
    log_p = 0.0
    for n, (h, r) in enumerate(zip(hg, rg, strict=True)):
        m = sum(min(c, r[g]) for g, c in h.items())
        t = max(hl - n, 0)
        num, den = (m, t) if n == 0 else (m + 1, t + 1)
        if num == 0 or den == 0:
            return 0.0
        log_p += math.log(num / den)
    bp = 1.0 if hl > rl else math.exp(1 - rl / hl)
    return 100.0 * bp * math.exp(log_p / len(hg))


def bleu_norm(hyps: Sequence[str], refs: Sequence[str]) -> float:
    _same_len(hyps, refs)
    return sum(sentence_bleu_norm(h, r) for h, r in zip(hyps, refs, strict=True)) / max(len(hyps), 1)


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def sentence_rouge_l(hyp: str, ref: str, beta: float = 1.2) -> float:
    ht, rt = tokenize(hyp, lower=True), tokenize(ref, lower=True)
    if not ht or not rt:
        return 0.0
    lcs = _lcs(ht, rt)
    if lcs == 0:
        return 0.0
    p, r = lcs / len(ht), lcs / len(rt)
    return 100.0 * (1 + beta**2) * p * r / (r + beta**2 * p)


def rouge_l(hyps: Sequence[str], refs: Sequence[str]) -> float:
    _same_len(hyps, refs)
    return sum(sentence_rouge_l(h, r) for h, r in zip(hyps, refs, strict=True)) / max(len(hyps), 1)


def _chunks(pairs: list[tuple[int, int]]) -> int:
    pairs = sorted(pairs)
    return 1 + sum(1 for (i0, j0), (i1, j1) in zip(pairs, pairs[1:], strict=False) if i1 != i0 + 1 or j1 != j0 + 1) if pairs else 0


def _align(hyp: list[str], ref: list[str], max_alignments: int = 5000) -> list[tuple[int, int]]:
    """Exact unigram alignment, one-to-one, with as many matches as possible and, among those, the
    fewest chunks (METEOR's rule); exhaustive over repeated words when there are at most
    ``max_alignments`` candidates, else repeated words are matched left to right."""
    hpos: dict[str, list[int]] = {}
    rpos: dict[str, list[int]] = {}
    for i, t in enumerate(hyp):
        hpos.setdefault(t, []).append(i)
    for j, t in enumerate(ref):
        rpos.setdefault(t, []).append(j)
    fixed: list[tuple[int, int]] = []
    choices: list[list[list[tuple[int, int]]]] = []
    total = 1
    for t, hs in hpos.items():
        rs = rpos.get(t)
        if not rs:
            continue
        if len(hs) == 1 and len(rs) == 1:
            fixed.append((hs[0], rs[0]))
            continue
        short, long_ = (hs, rs) if len(hs) <= len(rs) else (rs, hs)
        total *= math.perm(len(long_), len(short))
        choices.append([[(a, b) if short is hs else (b, a) for a, b in zip(short, perm, strict=True)]
                        for perm in itertools.permutations(long_, len(short))] if total <= max_alignments else [])
    if total > max_alignments:
        return sorted(fixed + [(h, r) for t, hs in hpos.items() if len(hs) > 1 or len(rpos.get(t, [])) > 1
                               for h, r in zip(hs, rpos.get(t, []), strict=False)])
    best: list[tuple[int, int]] = fixed
    best_chunks = -1
    for combo in itertools.product(*choices):
        pairs = fixed + [p for part in combo for p in part]
        c = _chunks(pairs)
        if best_chunks < 0 or c < best_chunks:
            best, best_chunks = pairs, c
    return sorted(best)


def sentence_meteor_exact(hyp: str, ref: str, alpha: float = 0.9, beta: float = 3.0, gamma: float = 0.5) -> float:
    ht, rt = tokenize(hyp, lower=True), tokenize(ref, lower=True)
    pairs = _align(ht, rt)
    m = len(pairs)
    if m == 0:
        return 0.0
    p, r = m / len(ht), m / len(rt)
    fmean = p * r / (alpha * p + (1 - alpha) * r)
    return 100.0 * fmean * (1 - gamma * (_chunks(pairs) / m) ** beta)


def meteor_exact(hyps: Sequence[str], refs: Sequence[str]) -> float:
    _same_len(hyps, refs)
    return sum(sentence_meteor_exact(h, r) for h, r in zip(hyps, refs, strict=True)) / max(len(hyps), 1)


_URL = re.compile(r"https?:|\bwww\.|://|[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b|\S+\.(?:org|com|net|io)\S*>", re.IGNORECASE)
_TRAILER_KEYS = ("signed-off-by", "reviewed-by", "acked-by", "tested-by", "reported-by", "suggested-by",
                 "co-developed-by", "reported-and-tested-by", "helped-by", "link", "closes", "cc", "fixes",
                 "bugzilla id", "message-id", "change-id")
_TRAILER = re.compile(r"(?:^|\s|:)(?:[a-z]+(?:-[a-z]+)*-by|" + "|".join(re.escape(k) for k in _TRAILER_KEYS) + r")\s*:",
                      re.IGNORECASE)
_WORD = re.compile(r"\w+")
_DANGLING = frozenset("the an of and or to for from".split())  # no subject ends with one of these
_STOP = frozenset("a an the of in on at to for from by with and or is not no when if as".split())
_BARE_PREFIX = re.compile(r"\s*[A-Za-z0-9_.,/+ -]{1,60}:\s*")  # "net/ice:" and nothing after it


def subject_rest(subject: str) -> str:
    """The subject after its ``prefix:`` (and any ``[PATCH]`` tags before it); the whole subject
    when it has no prefix."""
    prefix = subject_prefix(subject)
    if prefix:
        m = re.match(r"\s*(?:\[[^\]]*\]\s*)*" + re.escape(prefix) + r"\s*:", subject)
        if m:
            return subject[m.end():].strip()
    return subject.strip()


def junk_reason(subject: str) -> str:
    """Why ``subject`` is not a commit subject (``""`` when it reads as one): ``empty`` (no word
    after the prefix), ``url`` (a URL or an e-mail address), ``trailer`` (a ``Signed-off-by:``,
    ``Link:``, ``Reported-by:`` ... fragment), ``truncated`` (ends in "the", "of", "to" ...) or ``repeated`` (the prefix again, one non-stop word
    said 3+ times and making 40% or more of the words, or a phrase said twice)."""
    prefix = subject_prefix(subject)
    rest = "" if _BARE_PREFIX.fullmatch(subject) else subject_rest(subject)
    words = [w.lower() for w in _WORD.findall(rest)]
    if not words:
        return "empty"
    if _URL.search(subject):
        return "url"
    if _TRAILER.search(subject) or prefix.lower() in _TRAILER_KEYS:
        return "trailer"
    if words[-1] in _DANGLING:
        return "truncated"
    if prefix and rest.lower().startswith(prefix.lower() + ":"):
        return "repeated"
    top = max(Counter(w for w in words if w not in _STOP and not w.isdigit()).values(), default=0)
    top_all = max(Counter(w for w in words if not w.isdigit()).values(), default=0)
    half = len(words) // 2
    if (top >= 3 and top >= 0.4 * len(words)) or (top_all >= 3 and top_all >= 0.6 * len(words)) or (len(words) >= 4 and words[:half] == words[half:2 * half]):
        return "repeated"
    return ""


def junk_rate(hyps: Sequence[str]) -> float:
    return sum(bool(junk_reason(h)) for h in hyps) / max(len(hyps), 1)


def prefix_correct(hyp: str, ref: str) -> bool:
    """The right subsystem prefix, in a subject that is not junk (:func:`junk_reason`)."""
    return not junk_reason(hyp) and subject_prefix(hyp).lower() == subject_prefix(ref).lower()


def prefix_accuracy(hyps: Sequence[str], refs: Sequence[str]) -> float:
    _same_len(hyps, refs)
    return sum(prefix_correct(h, r) for h, r in zip(hyps, refs, strict=True)) / max(len(hyps), 1)


def all_metrics(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    return {"bleu_norm": bleu_norm(hyps, refs), "bleu_moses": bleu_moses(hyps, refs),
            "rouge_l": rouge_l(hyps, refs), "meteor_exact": meteor_exact(hyps, refs),
            "prefix_acc": prefix_accuracy(hyps, refs), "junk_rate": junk_rate(hyps)}


def _same_len(a: Sequence[str], b: Sequence[str]) -> None:
    if len(a) != len(b):
        raise ValueError(f"{len(a)} hypotheses for {len(b)} references")
