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
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

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


def micro_set_f1(pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> dict[str, float]:
    """Set precision / recall / F1 summed over items (micro), 0–100."""
    tp = n_pred = n_ref = 0
    for pred, ref in pairs:
        p, r = set(pred), set(ref)
        tp, n_pred, n_ref = tp + len(p & r), n_pred + len(p), n_ref + len(r)
    return {"precision": 100 * tp / (n_pred + 1e-4), "recall": 100 * tp / (n_ref + 1e-4),
            "f1": 100 * 2 * tp / (n_pred + n_ref + 1e-4)}


def _parsed_share(unparsed: int, n: int) -> float:
    """100 × the share of the ``n`` outputs that parsed (the reference's success ratio)."""
    return 100 * (1 - unparsed / n) if n else float("nan")


def _existence(got: Any, ref: Any) -> str:
    """"tp" / "fp" / "fn" / "tn" of an item by whether the output and the gold answer
    anything (are non-empty)."""
    return ("t" if bool(got) == bool(ref) else "f") + ("p" if got else "n")


def _accuracy(cut: Callable[[str], str]) -> Callable[..., dict[str, float]]:
    def score(preds: Sequence[str], items: Sequence[dict[str, Any]]) -> dict[str, float]:
        hits = sum(cut(p) == str(it["answer"]) for p, it in zip(preds, items, strict=True))
        acc = 100 * hits / len(items) if items else float("nan")
        return {"accuracy": acc, "score": acc}
    return score


def _list_f1(preds: Sequence[str], items: Sequence[dict[str, Any]]) -> dict[str, float]:
    m = micro_set_f1([(split_list(p), split_list(it["answer"]))
                      for p, it in zip(preds, items, strict=True)])
    return {**m, "score": m["f1"]}


def _chlw(preds: Sequence[str], items: Sequence[dict[str, Any]]) -> dict[str, float]:
    pairs, unparsed = [], 0
    for p, it in zip(preds, items, strict=True):
        got, ref = read_list(p), read_list(str(it["answer"]))
        if got is None or ref is None:
            unparsed += 1
            continue
        # An empty list is the answer "nothing to highlight": one item, so a right [] counts.
        pairs.append((got or [""], ref or [""]))
    ratio = _parsed_share(unparsed, len(items))
    m = micro_set_f1(pairs)
    return {**m, "success_ratio": ratio, "unparsed": unparsed,
            "score": ratio * m["f1"] / 100}


def _taxonomy_multiple(preds: Sequence[str], items: Sequence[dict[str, Any]]
                       ) -> dict[str, float]:
    hits = 0
    for p, it in zip(preds, items, strict=True):
        got, ref = normalise(cut_label(p)), str(it["answer"])
        hits += got in (normalise(ref), ref)
    em = 100 * hits / len(items) if items else float("nan")
    return {"exact_match": em, "score": em}


def _querycorr_topic(preds: Sequence[str], items: Sequence[dict[str, Any]]
                     ) -> dict[str, float]:
    tp = dict.fromkeys(LEVELS, 0)
    fp, fn = dict(tp), dict(tp)
    unparsed = 0
    for p, it in zip(preds, items, strict=True):
        found = _LEVEL.findall(p)
        if not found:
            unparsed += 1
            continue
        ref = str(it["answer"]).strip()
        if found[0] == ref:
            tp[ref] += 1
        else:
            fn[ref] = fn.get(ref, 0) + 1
            fp[found[0]] += 1
    f1 = []
    for lv in LEVELS:
        prec = 100 * tp[lv] / (tp[lv] + fp[lv] + 1e-5)
        rec = 100 * tp[lv] / (tp[lv] + fn.get(lv, 0) + 1e-5)
        f1.append(2 * prec * rec / (prec + rec + 1e-5))
    ratio = _parsed_share(unparsed, len(items))
    macro = sum(f1) / len(f1)
    return {"macro_f1": macro, "success_ratio": ratio, "unparsed": unparsed,
            "score": macro * ratio / 100}


def _moderation(preds: Sequence[str], items: Sequence[dict[str, Any]]) -> dict[str, float]:
    """snsrec's Note-Moderation: the harm type (or "none") by accuracy, and harmful vs not
    by precision / recall / F1 (0–100)."""
    got = [cut_label(p) for p in preds]
    ref = [str(it["answer"]) for it in items]
    acc = 100 * sum(g == r for g, r in zip(got, ref, strict=True)) / len(items) \
        if items else float("nan")
    from snsrec.eval.metrics import binary_prf

    prec, rec, f1 = binary_prf([g != "none" for g in got], [r != "none" for r in ref])
    return {"accuracy": acc, "harmful_precision": 100 * prec, "harmful_recall": 100 * rec,
            "harmful_f1": 100 * f1, "score": acc}


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


def _encoder() -> Any:
    if not _ENCODER:
        from sentence_transformers import SentenceTransformer

        from snsrec.text.encoders import minilm_path

        _ENCODER.append(SentenceTransformer(str(minilm_path()), device="cpu"))
    return _ENCODER[0]


def _querygen(preds: Sequence[str], items: Sequence[dict[str, Any]]) -> dict[str, float]:
    import numpy as np

    if not items:
        return {"similarity": float("nan"), "anls": float("nan"), "score": float("nan")}
    first = [_CUT_LIST.split(p.strip(), maxsplit=1)[0] for p in preds]
    refs = [str(it["answer"]) for it in items]
    vec = _encoder().encode(first + refs, normalize_embeddings=True, show_progress_bar=False)
    sim = 100 * np.sum(vec[:len(first)] * vec[len(first):], axis=1)
    edit = np.array([anls(p, r) for p, r in zip(preds, refs, strict=True)])
    return {"similarity": float(sim.mean()), "anls": float(edit.mean()),
            "score": float(((sim + edit) / 2).mean())}


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


def _mrc_complex(preds: Sequence[str], items: Sequence[dict[str, Any]]) -> dict[str, float]:
    counts = dict.fromkeys(("tp", "fp", "fn", "tn"), 0)
    f1s, ems, unparsed = [], [], 0
    for p, it in zip(preds, items, strict=True):
        got, ref = read_result(p), read_result(str(it["answer"]))
        if got is None or ref is None:
            unparsed += 1
            continue
        counts[_existence(got, ref)] += 1
        if not got or not ref:          # both empty: right; one empty: wrong
            f1s.append(float(not got and not ref))
            ems.append(float(not got and not ref))
        else:       # per predicted option: its best match among the gold ones
            norm = {g.lower().translate(_STRIP) for g in ref}
            f1s.append(sum(max(_lcs_f1(o, g) for g in ref) for o in got) / len(got))
            ems.append(sum(o.lower().translate(_STRIP) in norm for o in got) / len(got))
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    prec = tp / (tp + fp) if tp + fp else -1.0
    rec = tp / (tp + fn) if tp + fn else -1.0
    total = 2 * prec * rec / (prec + rec) if prec > 0 and rec > 0 else 0.0
    ratio = _parsed_share(unparsed, len(items))
    mean = (lambda xs: sum(xs) / len(xs) if xs else 0.0)  # noqa: E731
    parts = {"success_total_f1": ratio * total, "success_option_f1": ratio * mean(f1s),
             "success_option_em": ratio * mean(ems)}
    return {**parts, "success_ratio": ratio, "unparsed": unparsed,
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


def _mrc_simple(preds: Sequence[str], items: Sequence[dict[str, Any]]) -> dict[str, float]:
    counts = dict.fromkeys(("tp", "fp", "fn", "tn"), 0)
    pairs, unparsed = [], 0
    for p, it in zip(preds, items, strict=True):
        got = read_list(p)
        gold = it["answer"] if isinstance(it["answer"], list) else read_list(str(it["answer"]))
        if got is None or gold is None:
            unparsed += 1
            continue
        hyp, ref = "\n".join(got).strip(), "".join(gold)
        counts[_existence(hyp, ref)] += 1
        if hyp and ref:
            pairs.append(_bleu_rouge(hyp, ref))
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    prec, rec = tp / (tp + fp + 1e-4), tp / (tp + fn + 1e-4)
    f1 = 2 * prec * rec / (prec + rec + 1e-4)
    ratio = _parsed_share(unparsed, len(items))
    means = [sum(x) / len(pairs) for x in zip(*pairs, strict=True)] if pairs else [0.0] * 4
    parts = {"success_f1": ratio * f1, "success_bleu": ratio * means[0],
             "success_rouge_1": ratio * means[1], "success_rouge_2": ratio * means[2],
             "success_rouge_l": ratio * means[3]}
    return {**parts, "success_ratio": ratio, "unparsed": unparsed,
            "score": sum(parts.values()) / len(parts)}


SCORERS: dict[str, Callable[..., dict[str, float]]] = {
    "Note-Gender": _accuracy(cut_answer),
    "Note-QueryCorr-explain": _accuracy(cut_answer),
    "Note-Hashtag-single": _accuracy(cut_label),
    "Note-Taxonomy-single": _accuracy(cut_label),
    "Note-Taxonomy-multiple": _taxonomy_multiple,
    "Note-Hashtag-multiple": _list_f1,
    "Note-NER": _list_f1,
    "Note-CHLW": _chlw,
    "Note-QueryCorr-topic": _querycorr_topic,
    "Note-Moderation": _moderation,
    "Note-QueryGen": _querygen,
    "Note-MRC-complex": _mrc_complex,
    "Note-MRC-simple": _mrc_simple,
}


def score_task(task: str, preds: Sequence[str], items: Sequence[dict[str, Any]]
               ) -> dict[str, float]:
    """The metrics of ``task`` (an SNS-Bench file name without .json) for ``preds``."""
    from snsrec.errors import ConfigError

    if task not in SCORERS:
        raise ConfigError(f"no scorer for task '{task}'; scored tasks: {', '.join(SCORERS)}")
    if len(preds) != len(items):
        raise ConfigError(f"task '{task}': {len(preds)} outputs for {len(items)} items")
    return SCORERS[task](preds, items)
