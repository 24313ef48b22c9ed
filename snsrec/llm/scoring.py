"""The SNS-Bench task metrics, as the public benchmark computes them.

Each scorer takes the model's raw outputs and the task items (SNS-Bench JSON
objects) and returns the task's metrics on a 0–100 scale, ``score`` being the
number the benchmark reports. Answers are parsed the way the benchmark's
reference evaluators parse them, quirks included, so numbers on real
SNS-Bench files are comparable with published ones:

- single labels (Gender, QueryCorr-explain: ``cut_answer``; Hashtag-single,
  Taxonomy: ``cut_label``) keep the text before the first line break, full
  stop or comma; ``cut_label`` also cuts at "<", ">" and the bare substring
  "end" (the reference's end-of-response pattern, unescaped) — a gold label
  containing "end" cannot be matched, so task builders avoid such labels;
- comma lists (Hashtag-multiple, NER) are split on both sides and scored by
  set F1 summed over the corpus (micro);
- CHLW's Python-list answers are read with ``ast.literal_eval`` (the
  reference uses ``eval`` on model output; valid lists read the same), an
  output that is no list of strings is *unparsed*: left out of the F1 and
  charged through the success ratio (``score = f1 × parsed share``);
- QueryCorr-topic takes the first of -1, 0, 1, 2, 3 in the output; macro F1
  over the five levels × the parsed share;
- Taxonomy-multiple compares "primary | secondary | tertiary" after removing
  punctuation and articles (exact match, no partial credit).

- QueryGen: per item the mean of the cosine similarity of the output's first
  line and the reference under a sentence encoder (all-MiniLM-L6-v2 from its
  wheel; the reference evaluator used bge-large-en-v1.5, which cannot ship
  here) and the character-level ANLS of the whole output (no 0.5 threshold).

- MRC-complex: only the ``<Result>`` JSON counts; whether an answer exists (F1
  over items), and per item the predicted options' best contiguous-token F1 and
  exact match against the gold ones, each × the parsed share; where the
  reference raises (no true positive but both errors), total F1 is 0 here.

- MRC-simple: the output's list joined by newlines against the gold spans joined;
  whether an answer exists (F1 over items), and over the items where both have
  one, BLEU-4 (NLTK, no smoothing) and ROUGE-1/2/L F (the ``rouge`` package) over
  jieba words with line breaks and emoji removed; each × the parsed share, the
  score their mean. Where the reference crashes (an empty hypothesis for ROUGE),
  that pair scores 0 here.

Every metric is a function of per-item counts summed over the items (``Metric``:
hits, true / false positives per label, parsed or not, per-item similarities): micro
and macro F1 are recomputed from the summed counts of any subset or resample of the
items, never averaged from per-item scores (``snsrec.llm.compare`` bootstraps them).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

_ANSWER_PREFIX = re.compile(r"答案：|Answer:")
_CUT_ANSWER = re.compile(r"[\n.,]|<|endofresponse|>")
_CUT_LABEL = re.compile(r"[\n.,]|<|endofresponse|>|<|end|>|<|im_end|>")
_CUT_LIST = re.compile(r"\n|<|endofresponse|>")
_BRACKETS = re.compile(r"\[[^\[\]]*\]", re.DOTALL)
_LEVEL = re.compile(r"(-1|0|1|2|3)")
LEVELS = ("-1", "0", "1", "2", "3")


def cut_answer(text: str) -> str:
    """Gender / QueryCorr-explain: the text before the first line break, '.', ',', '<', '>'."""
    return _CUT_ANSWER.split(text.replace("Answer:", "").strip(), maxsplit=1)[0].strip()


def cut_label(text: str) -> str:
    """Hashtag-single / Taxonomy: ``cut_answer``'s cut, plus at the substring "end"."""
    return _CUT_LABEL.split(_ANSWER_PREFIX.sub("", text).strip(), maxsplit=1)[0].strip()


def split_list(text: str) -> list[str]:
    """Hashtag-multiple / NER: the first line, split on commas, pieces stripped."""
    head = _CUT_LIST.split(_ANSWER_PREFIX.sub("", str(text)).strip(), maxsplit=1)[0]
    return [p.strip() for p in head.split(",") if p]


def read_list(text: str) -> list[str] | None:
    """CHLW: the first bracketed span without inner brackets (or the whole text) as a list
    of strings; None when it is not one."""
    m = _BRACKETS.search(text)
    try:
        value = ast.literal_eval(m.group(0) if m else text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return value


def normalise(text: str) -> str:
    """The exact-match normalisation: first line / sentence / clause, punctuation and the
    articles a, an, the removed, whitespace collapsed (case kept)."""
    text = re.split(r"[\n.,]", text, maxsplit=1)[0]
    text = re.sub(r"[^\w\s]", "", text)
    text = re.sub(r"\b(a|an|the)\b", " ", text, flags=re.IGNORECASE)
    return " ".join(text.split())


class Metric(NamedTuple):
    """A task's metric: ``stats`` gives each item's counts (``[items, k]``), ``total`` the
    metrics (0–100) of their sums (``[..., k]``, any leading axes) over ``n`` items."""
    stats: Callable[[Sequence[str], Sequence[dict[str, Any]]], np.ndarray]
    total: Callable[[np.ndarray, int], dict[str, Any]]


def _rows(rows: list[Sequence[float]], k: int) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), k)


def _div(a: Any, b: Any, empty: float = 0.0) -> np.ndarray:
    """``a / b`` elementwise, ``empty`` where ``b`` is 0."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.where(b != 0, a / np.where(b != 0, b, 1.0), empty)


def _share(x: Any, n: int) -> np.ndarray:
    """100 × ``x`` / ``n`` (nan without items)."""
    return 100 * np.asarray(x, np.float64) / n if n else np.full(np.shape(x), np.nan)


def _set_counts(pred: Sequence[str], ref: Sequence[str]) -> tuple[int, int, int]:
    """(true positives, predicted, reference) of two answer sets."""
    p, r = set(pred), set(ref)
    return len(p & r), len(p), len(r)


def _micro(tp: Any, n_pred: Any, n_ref: Any) -> dict[str, Any]:
    """Set precision / recall / F1 of counts summed over items (the reference's 1e-4)."""
    return {"precision": 100 * tp / (n_pred + 1e-4), "recall": 100 * tp / (n_ref + 1e-4),
            "f1": 100 * 2 * tp / (n_pred + n_ref + 1e-4)}


def micro_set_f1(pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> dict[str, float]:
    """Set precision / recall / F1 summed over items (micro), 0–100."""
    sums = _rows([_set_counts(p, r) for p, r in pairs], 3).sum(axis=0)
    return {k: float(v) for k, v in _micro(*sums).items()}


_EXISTENCE = ("tp", "fp", "fn", "tn")


def _existence(got: Any, ref: Any) -> list[int]:
    """One-hot tp / fp / fn / tn of an item by whether the output and the gold answer
    anything (are non-empty)."""
    kind = ("t" if bool(got) == bool(ref) else "f") + ("p" if got else "n")
    return [int(kind == k) for k in _EXISTENCE]


def _accuracy(cut: Callable[[str], str]) -> Metric:
    def stats(preds: Sequence[str], items: Sequence[dict[str, Any]]) -> np.ndarray:
        return _rows([[cut(p) == str(it["answer"])]
                      for p, it in zip(preds, items, strict=True)], 1)

    def total(s: np.ndarray, n: int) -> dict[str, Any]:
        acc = _share(s[..., 0], n)
        return {"accuracy": acc, "score": acc}
    return Metric(stats, total)


def _list_f1_stats(preds: Sequence[str], items: Sequence[dict[str, Any]]) -> np.ndarray:
    return _rows([_set_counts(split_list(p), split_list(it["answer"]))
                  for p, it in zip(preds, items, strict=True)], 3)


def _list_f1_total(s: np.ndarray, n: int) -> dict[str, Any]:
    m = _micro(s[..., 0], s[..., 1], s[..., 2])
    return {**m, "score": m["f1"]}


def _chlw_stats(preds: Sequence[str], items: Sequence[dict[str, Any]]) -> np.ndarray:
    """Per item: unparsed, then true positives, predicted and gold words.

    SNS-Bench's rule, as its reference evaluator has it (``CHLWEvaluator.score`` in
    HC-Guo/SNS-Bench, ``code/chlw.py``): an empty list, answered or gold, becomes
    ``[""]`` — one word, the answer "nothing to highlight" — so a right ``[]`` is one true
    positive and a ``[]`` against gold words one predicted word that misses; the counts
    are summed over the items (micro F1), and an output that does not read as a list of
    strings is left out of them and charged through the success ratio."""
    rows = []
    for p, it in zip(preds, items, strict=True):
        got, ref = read_list(p), read_list(str(it["answer"]))
        rows.append((1, 0, 0, 0) if got is None or ref is None else
                    (0, *_set_counts(got or [""], ref or [""])))
    return _rows(rows, 4)


def _chlw_total(s: np.ndarray, n: int) -> dict[str, Any]:
    ratio = _share(n - s[..., 0], n)
    m = _micro(s[..., 1], s[..., 2], s[..., 3])
    return {**m, "success_ratio": ratio, "unparsed": s[..., 0], "score": ratio * m["f1"] / 100}


def _taxonomy_multiple_stats(preds: Sequence[str], items: Sequence[dict[str, Any]]
                             ) -> np.ndarray:
    rows = []
    for p, it in zip(preds, items, strict=True):
        got, ref = normalise(cut_label(p)), str(it["answer"])
        rows.append([got in (normalise(ref), ref)])
    return _rows(rows, 1)


def _taxonomy_multiple_total(s: np.ndarray, n: int) -> dict[str, Any]:
    em = _share(s[..., 0], n)
    return {"exact_match": em, "score": em}


def _querycorr_topic_stats(preds: Sequence[str], items: Sequence[dict[str, Any]]
                           ) -> np.ndarray:
    """Per item: unparsed, then one-hot true positive, false positive and false negative
    per level (LEVELS each)."""
    k = len(LEVELS)
    rows = []
    for p, it in zip(preds, items, strict=True):
        row = [0] * (1 + 3 * k)
        found = _LEVEL.findall(p)
        ref = str(it["answer"]).strip()
        if not found:
            row[0] = 1
        elif found[0] == ref:
            row[1 + LEVELS.index(ref)] = 1
        else:
            row[1 + k + LEVELS.index(found[0])] = 1
            if ref in LEVELS:
                row[1 + 2 * k + LEVELS.index(ref)] = 1
        rows.append(row)
    return _rows(rows, 1 + 3 * k)


def _querycorr_topic_total(s: np.ndarray, n: int) -> dict[str, Any]:
    k = len(LEVELS)
    tp, fp, fn = s[..., 1:1 + k], s[..., 1 + k:1 + 2 * k], s[..., 1 + 2 * k:]
    prec = 100 * tp / (tp + fp + 1e-5)
    rec = 100 * tp / (tp + fn + 1e-5)
    macro = (2 * prec * rec / (prec + rec + 1e-5)).mean(axis=-1)
    ratio = _share(n - s[..., 0], n)
    return {"macro_f1": macro, "success_ratio": ratio, "unparsed": s[..., 0],
            "score": macro * ratio / 100}


def _moderation_stats(preds: Sequence[str], items: Sequence[dict[str, Any]]) -> np.ndarray:
    """Per item: right harm type, answered harmful, is harmful, both."""
    rows = []
    for p, it in zip(preds, items, strict=True):
        got, ref = cut_label(p), str(it["answer"])
        said, harmful = got != "none", ref != "none"
        rows.append((got == ref, said, harmful, said and harmful))
    return _rows(rows, 4)


def _moderation_total(s: np.ndarray, n: int) -> dict[str, Any]:
    """snsrec's Note-Moderation: the harm type (or "none") by accuracy, and harmful vs not
    by precision / recall / F1 (0–100; 0 where a denominator is empty)."""
    prec, rec = _div(s[..., 3], s[..., 1]), _div(s[..., 3], s[..., 2])
    acc = _share(s[..., 0], n)
    return {"accuracy": acc, "harmful_precision": 100 * prec, "harmful_recall": 100 * rec,
            "harmful_f1": 100 * _div(2 * prec * rec, prec + rec), "score": acc}


def levenshtein(a: str, b: str) -> int:
    """Character edit distance (insert, delete, substitute: 1 each)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def anls(pred: str, ref: str) -> float:
    """100 × (1 − edit distance / the longer length); two empty strings score 100."""
    longest = max(len(pred), len(ref))
    return 100.0 if longest == 0 else 100 * (1 - levenshtein(pred, ref) / longest)


_ENCODER: list[Any] = []
_EMBEDDED: dict[str, np.ndarray] = {}


def _encoder() -> Any:
    if not _ENCODER:
        from sentence_transformers import SentenceTransformer

        from snsrec.text.encoders import minilm_path

        _ENCODER.append(SentenceTransformer(str(minilm_path()), device="cpu"))
    return _ENCODER[0]


def _embed(texts: list[str]) -> np.ndarray:
    """Unit-norm sentence embeddings of ``texts``, each distinct text encoded once a process:
    the constant-answer baselines and the bootstrap score the same texts again and again
    (a best constant answer of QueryGen took 83 s encoding the same 32 references for each
    of 34 candidates)."""
    new = [t for t in dict.fromkeys(texts) if t not in _EMBEDDED]
    if new:
        vec = _encoder().encode(new, normalize_embeddings=True, show_progress_bar=False)
        _EMBEDDED.update(zip(new, vec, strict=True))
    return np.stack([_EMBEDDED[t] for t in texts])


def _querygen_stats(preds: Sequence[str], items: Sequence[dict[str, Any]]) -> np.ndarray:
    """Per item: the cosine similarity (× 100) and the ANLS."""
    if not items:
        return _rows([], 2)
    first = [_CUT_LIST.split(p.strip(), maxsplit=1)[0] for p in preds]
    refs = [str(it["answer"]) for it in items]
    sim = 100 * np.sum(_embed(first) * _embed(refs), axis=1)
    edit = [anls(p, r) for p, r in zip(preds, refs, strict=True)]
    return np.stack([sim.astype(np.float64), np.asarray(edit, np.float64)], axis=1)


def _querygen_total(s: np.ndarray, n: int) -> dict[str, Any]:
    sim, edit = _share(s[..., 0], n) / 100, _share(s[..., 1], n) / 100
    return {"similarity": sim, "anls": edit, "score": (sim + edit) / 2}


_RESULT = re.compile(r"(?<=<Result>).+?(?=</Result>)", re.DOTALL)
_STRIP = str.maketrans("", "", ":_`，。：？！()“”；’《》·、,「」（）－～『』|")
_CJK = re.compile(r"[\u4e00-\u9fff=]")


def read_result(text: str) -> dict[str, str] | None:
    """MRC-complex: the last ``<Result>…</Result>`` as {option: reason} (the last reason
    of a repeated option wins); None when it is missing or not a list of
    {"Option": str, "Reason": str}."""
    found = _RESULT.findall(str(text))
    if not found:
        return None
    body = found[-1].strip().lstrip("`json").rstrip("`")
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    out: dict[str, str] = {}
    for v in value:
        if not (isinstance(v, dict) and isinstance(v.get("Option"), str)
                and isinstance(v.get("Reason"), str)):
            return None
        out[v["Option"]] = v["Reason"]
    return out


def _tokens(text: str) -> list[str]:
    """Each CJK character is a token; each maximal run of anything else is one token."""
    out, run = [], ""
    for ch in text:
        if _CJK.match(ch):
            if run:
                out.append(run)
                run = ""
            out.append(ch)
        else:
            run += ch
    return [*out, run] if run else out


def _lcs_f1(pred: str, gold: str) -> float:
    """F1 of the longest common contiguous token run of the two normalised strings."""
    p, g = _tokens(pred.lower().translate(_STRIP)), _tokens(gold.lower().translate(_STRIP))
    best = 0
    for i in range(len(p)):
        for j in range(len(g)):
            k = 0
            while i + k < len(p) and j + k < len(g) and p[i + k] == g[j + k]:
                k += 1
            best = max(best, k)
    if not best:
        return 0.0
    prec, rec = best / len(p), best / len(g)
    return 2 * prec * rec / (prec + rec)


def _mrc_complex_stats(preds: Sequence[str], items: Sequence[dict[str, Any]]) -> np.ndarray:
    """Per item: unparsed, one-hot tp / fp / fn / tn of answering anything, and the option
    F1 and exact match (0 when unparsed)."""
    rows = []
    for p, it in zip(preds, items, strict=True):
        got, ref = read_result(p), read_result(str(it["answer"]))
        if got is None or ref is None:
            rows.append([1, 0, 0, 0, 0, 0.0, 0.0])
            continue
        if not got or not ref:          # both empty: right; one empty: wrong
            f1 = em = float(not got and not ref)
        else:       # per predicted option: its best match among the gold ones
            norm = {g.lower().translate(_STRIP) for g in ref}
            f1 = sum(max(_lcs_f1(o, g) for g in ref) for o in got) / len(got)
            em = sum(o.lower().translate(_STRIP) in norm for o in got) / len(got)
        rows.append([0, *_existence(got, ref), f1, em])
    return _rows(rows, 7)


def _mrc_complex_total(s: np.ndarray, n: int) -> dict[str, Any]:
    tp, fp, fn = s[..., 1], s[..., 2], s[..., 3]
    prec, rec = _div(tp, tp + fp, -1.0), _div(tp, tp + fn, -1.0)
    total = np.where((prec > 0) & (rec > 0), _div(2 * prec * rec, prec + rec), 0.0)
    parsed = n - s[..., 0]
    ratio = _share(parsed, n)
    parts = {"success_total_f1": ratio * total, "success_option_f1": ratio * _div(s[..., 5],
                                                                                   parsed),
             "success_option_em": ratio * _div(s[..., 6], parsed)}
    return {**parts, "success_ratio": ratio, "unparsed": s[..., 0],
            "score": sum(parts.values()) / 3}


def _words(text: str) -> list[str]:
    """jieba's segmentation of ``text`` without line breaks, U+FFFD and emoji (spaces stay
    tokens, as in the reference)."""
    import logging

    import demoji
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return list(jieba.cut(demoji.replace(text.replace("\n", "").replace("\ufffd", ""), "")))


def _bleu_rouge(hyp: str, ref: str) -> tuple[float, float, float, float]:
    import warnings

    from nltk.translate.bleu_score import sentence_bleu
    from rouge import Rouge

    h, r = _words(hyp), _words(ref)
    with warnings.catch_warnings():         # NLTK warns on zero n-gram overlaps (BLEU 0)
        warnings.simplefilter("ignore")
        bleu = float(sentence_bleu([r], h)) if h and r else 0.0
    try:
        s = Rouge().get_scores(" ".join(h), " ".join(r))[0]
    except (ValueError, RecursionError, ZeroDivisionError):
        return bleu, 0.0, 0.0, 0.0           # the reference crashes here (empty hypothesis)
    return bleu, s["rouge-1"]["f"], s["rouge-2"]["f"], s["rouge-l"]["f"]


def _mrc_simple_stats(preds: Sequence[str], items: Sequence[dict[str, Any]]) -> np.ndarray:
    """Per item: unparsed, one-hot tp / fp / fn / tn of answering anything, whether both
    answer (a pair), and the pair's BLEU and ROUGE-1/2/L."""
    rows = []
    for p, it in zip(preds, items, strict=True):
        got = read_list(p)
        gold = it["answer"] if isinstance(it["answer"], list) else read_list(str(it["answer"]))
        if got is None or gold is None:
            rows.append([1, *[0] * 9])
            continue
        hyp, ref = "\n".join(got).strip(), "".join(gold)
        pair = _bleu_rouge(hyp, ref) if hyp and ref else (0.0,) * 4
        rows.append([0, *_existence(hyp, ref), int(bool(hyp and ref)), *pair])
    return _rows(rows, 10)


def _mrc_simple_total(s: np.ndarray, n: int) -> dict[str, Any]:
    tp, fp, fn = s[..., 1], s[..., 2], s[..., 3]
    prec, rec = tp / (tp + fp + 1e-4), tp / (tp + fn + 1e-4)
    f1 = 2 * prec * rec / (prec + rec + 1e-4)
    ratio = _share(n - s[..., 0], n)
    means = [_div(s[..., j], s[..., 5]) for j in range(6, 10)]
    parts = {"success_f1": ratio * f1, "success_bleu": ratio * means[0],
             "success_rouge_1": ratio * means[1], "success_rouge_2": ratio * means[2],
             "success_rouge_l": ratio * means[3]}
    return {**parts, "success_ratio": ratio, "unparsed": s[..., 0],
            "score": sum(parts.values()) / len(parts)}


SCORERS: dict[str, Metric] = {
    "Note-Gender": _accuracy(cut_answer),
    "Note-QueryCorr-explain": _accuracy(cut_answer),
    "Note-Hashtag-single": _accuracy(cut_label),
    "Note-Taxonomy-single": _accuracy(cut_label),
    "Note-Taxonomy-multiple": Metric(_taxonomy_multiple_stats, _taxonomy_multiple_total),
    "Note-Hashtag-multiple": Metric(_list_f1_stats, _list_f1_total),
    "Note-NER": Metric(_list_f1_stats, _list_f1_total),
    "Note-CHLW": Metric(_chlw_stats, _chlw_total),
    "Note-QueryCorr-topic": Metric(_querycorr_topic_stats, _querycorr_topic_total),
    "Note-Moderation": Metric(_moderation_stats, _moderation_total),
    "Note-QueryGen": Metric(_querygen_stats, _querygen_total),
    "Note-MRC-complex": Metric(_mrc_complex_stats, _mrc_complex_total),
    "Note-MRC-simple": Metric(_mrc_simple_stats, _mrc_simple_total),
}


def score_task(task: str, preds: Sequence[str], items: Sequence[dict[str, Any]]
               ) -> dict[str, float]:
    """The metrics of ``task`` (an SNS-Bench file name without .json) for ``preds``."""
    from snsrec.errors import ConfigError

    if task not in SCORERS:
        raise ConfigError(f"no scorer for task '{task}'; scored tasks: {', '.join(SCORERS)}")
    if len(preds) != len(items):
        raise ConfigError(f"task '{task}': {len(preds)} outputs for {len(items)} items")
    metric = SCORERS[task]
    sums = metric.stats(preds, items).sum(axis=0)
    return {k: float(v) for k, v in metric.total(sums, len(items)).items()}
