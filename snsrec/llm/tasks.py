"""`snsrec llm tasks build --world DIR --out DIR`: the SNS task suite from a world's truth.

Every task is written in the SNS-Bench JSON layout (one list of flat objects
per task file, the fields SNS-Bench uses: ``content``, ``answer``,
``candidates``, ``query``, ``question``, ``sentence1`` / ``sentence2``), one
file per task and split under ``OUT/<split>/``. Splits are by note (a seeded
hash of the note id: 80 / 10 / 10 %), so no note is in two splits. Notes are
English, Chinese or mixed, as the world writes them.

Built so far, each from what the world knows for certain:

- ``Note-Taxonomy-single`` — the note's category among all categories, or its
  subcategory among its category's subcategories;
- ``Note-Taxonomy-multiple`` — "category | subcategory | tertiary": the world's
  taxonomy has two levels, so the third is the subcategory's topic word the note
  uses most (e.g. ``food | baking | croissant``), candidates 8 a level;
- ``Note-Hashtag-single`` / ``-multiple`` — its own hashtags among tags of
  notes from other categories (4 candidates / 12);
- ``Note-NER`` — every entity of one type (place, product, person, brand) in
  the note, as the world placed them;
- ``Note-MRC-simple`` — a question about the note and the answer span in it,
  or a question about another note (answer ``[]``);
- ``Note-MRC-complex`` — a query that found the note and an answer type (an
  entity type): every such entity with its sentence as the reason, in the
  four tagged sections; or a note of another category and empty lists;
- ``Note-QueryCorr-explain`` — can the note answer the question (Yes / No);
- ``Note-CHLW`` — a sentence of the note and options: its highlight words and
  other entities in it (answer: the highlight options, a Python list);
- ``Note-QueryCorr-topic`` — the world's graded relevance (0–3) of a note a
  search showed, -1 for a note of another category;
- ``Note-QueryGen`` — a note and a query it fully satisfies (relevance 3);
- ``Note-Gender`` — does the note appeal mainly to one gender (|gender appeal|
  ≥ 0.5: Yes);
- ``Note-Moderation`` — the note's harm type, or ``none``. Its valid and test
  splits are sampled half harmful (``EVAL_HARMFUL_SHARE``; the world has ~4%
  harmful notes, and on the natural mix answering ``none`` scores ~96); its
  train split keeps the natural mix unless ``harmful_share`` says otherwise.

Single labels never contain "end", "," or "." (SNS-Bench's answer cut would make
them unmatchable: ``snsrec.llm.scoring``); such tags are left out.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from snsrec.errors import ConfigError, DataError
from snsrec.io import out_dir, write_json, write_text
from snsrec.llm.prompts import PROMPTS
from snsrec.progress import echo

SPLITS = (("train", 0.8), ("valid", 0.1), ("test", 0.1))
HARM_NONE = "none"
EVAL_HARMFUL_SHARE = 0.5        # of Note-Moderation's valid and test samples
GENDER_THRESHOLD = 0.5


def split_of(note_id: int, seed: int) -> str:
    """The split of a note: a seeded CRC-32 of its id, the same in every process."""
    u = zlib.crc32(f"{seed}:{note_id}".encode()) / 2**32
    edge = 0.0
    for name, share in SPLITS:
        edge += share
        if u < edge:
            return name
    return SPLITS[-1][0]


def splits_of(note_ids: Any, seed: int) -> np.ndarray:
    """``split_of`` of every note id, as an array of split names."""
    return np.array([split_of(int(n), seed) for n in note_ids], dtype=object)


def _clean(label: str) -> bool:
    """A single label SNS-Bench's answer cut leaves intact."""
    return "end" not in label and "," not in label and "." not in label


def _note_content(row: dict[str, Any]) -> str:
    return f"Note Title: {row['title'] or ''}\n    Note Content: {row['body'] or ''}"


def _plain(row: dict[str, Any]) -> str:
    return f"{row['title'] or ''}\n{row['body'] or ''}"


def _optional(path: Path, columns: list[str]) -> pl.DataFrame:
    """A table's columns, or an empty frame when the world has no such table."""
    if not path.is_file():
        return pl.DataFrame({c: [] for c in columns})
    return pl.read_parquet(path, columns=columns)


class _World:
    """The world tables the builders read (notes with truth, QA, entities)."""

    def __init__(self, root: Path):
        for name in ("notes.parquet", "truth/notes.parquet", "truth/qa.parquet",
                     "truth/entities.parquet"):
            if not (root / name).is_file():
                raise DataError(f"{root}: no {name}; build tasks from a world directory "
                                "(`snsrec world generate`)")
        truth = pl.read_parquet(root / "truth" / "notes.parquet").select("note_id",
                                                                          "gender_appeal")
        self.notes = (pl.read_parquet(root / "notes.parquet")
                      .join(truth, on="note_id", how="left").sort("note_id"))
        self.qa = pl.read_parquet(root / "truth" / "qa.parquet")
        self.entities = pl.read_parquet(root / "truth" / "entities.parquet")
        self.highlights = _optional(root / "truth" / "highlights.parquet", ["note_id", "word"])
        self.relevance = _optional(root / "truth" / "relevance.parquet",
                                   ["query_id", "note_id", "label"])
        queries = _optional(root / "queries.parquet", ["query_id", "query"])
        self.queries = dict(queries.iter_rows())
        self.rows = {r["note_id"]: r for r in self.notes.iter_rows(named=True)}
        self.by_category: dict[str, list[int]] = {}
        for r in self.rows.values():
            self.by_category.setdefault(r["category"], []).append(r["note_id"])
        subs: dict[str, set[str]] = {}
        for r in self.rows.values():
            subs.setdefault(r["category"], set()).add(r["subcategory"])
        self.subcategories = {c: sorted(s) for c, s in subs.items()}
        self.categories = sorted(subs)

    def other_note(self, category: str, rng: np.random.Generator) -> int:
        """A random note of another category than ``category`` (a category first, then one
        of its notes)."""
        others = [c for c in self.categories if c != category]
        return int(rng.choice(self.by_category[others[rng.integers(len(others))]]))


def taxonomy_single(w: _World, rng: np.random.Generator) -> list[tuple[int, dict]]:
    out = []
    for nid, r in w.rows.items():
        if rng.random() < 0.5:
            cands, answer = w.categories, r["category"]
        else:
            cands, answer = w.subcategories[r["category"]], r["subcategory"]
        if len(cands) < 2 or not _clean(answer):
            continue
        out.append((nid, {"content": _note_content(r), "candidates": ", ".join(cands),
                          "answer": answer}))
    return out


def _sub_words() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Subcategory → (its English words, its Chinese words): the world's third level."""
    from snsrec.data.world.vocab import TOPICS

    return {s: (t.sub_words_en[i], t.sub_words_zh[i])
            for t in TOPICS for i, s in enumerate(t.subcategories)}


def _pick(rng: np.random.Generator, true: str, pool: list[str], k: int) -> list[str]:
    """``true`` and up to ``k - 1`` others of ``pool``, shuffled."""
    others = [x for x in dict.fromkeys(pool) if x != true]
    keep = [others[i] for i in rng.permutation(len(others))[:k - 1]]
    out = [true, *keep]
    return [out[i] for i in rng.permutation(len(out))]


def taxonomy_multiple(w: _World, rng: np.random.Generator) -> list[tuple[int, dict]]:
    """Category | subcategory | the subcategory's word the note uses most (the world's
    taxonomy has two levels; the topic words of a subcategory are its third)."""
    words = _sub_words()
    out = []
    for nid, r in w.rows.items():
        en, zh = words.get(r["subcategory"], ((), ()))
        text = _plain(r)
        counts = [(text.count(x), -i, x) for i, x in enumerate((*en, *zh)) if x in text]
        if not counts:
            continue
        tertiary = max(counts)[2]
        levels = (r["category"], r["subcategory"], tertiary)
        if not all(_clean(x) and "|" not in x for x in levels):
            continue
        cats = _pick(rng, r["category"], w.categories, 8)
        subs = _pick(rng, r["subcategory"], [s for c in cats for s in w.subcategories[c]], 8)
        ters = _pick(rng, tertiary, [x for s in subs for x in (*words.get(s, ((), ()))[0],
                                                                 *words.get(s, ((), ()))[1])], 8)
        out.append((nid, {"content": _note_content(r), "candidates_primary": repr(cats),
                          "candidates_secondary": repr(subs), "candidates_tertiary": repr(ters),
                          "answer": " | ".join(levels)}))
    return out


def _other_tags(w: _World, r: dict, rng: np.random.Generator, k: int) -> list[str]:
    """``k`` hashtags of random notes from other categories, none of ``r``'s own."""
    own, out = set(r["hashtags"] or []), []
    for _ in range(50 * k):
        if len(out) >= k:
            break
        tags = w.rows[w.other_note(r["category"], rng)]["hashtags"] or []
        if tags:
            t = tags[rng.integers(len(tags))]
            if t not in own and t not in out and _clean(t):
                out.append(t)
    return out


def hashtag_single(w: _World, rng: np.random.Generator) -> list[tuple[int, dict]]:
    out = []
    for nid, r in w.rows.items():
        own = [t for t in (r["hashtags"] or []) if _clean(t)]
        if not own:
            continue
        answer = own[rng.integers(len(own))]
        cands = [answer, *_other_tags(w, r, rng, 3)]
        rng.shuffle(cands)
        out.append((nid, {"content": _note_content(r), "candidates": ", ".join(cands),
                          "answer": answer}))
    return out


def hashtag_multiple(w: _World, rng: np.random.Generator) -> list[tuple[int, dict]]:
    out = []
    for nid, r in w.rows.items():
        own = list(dict.fromkeys(t for t in (r["hashtags"] or []) if "," not in t))
        if not own:
            continue
        cands = [*own, *_other_tags(w, r, rng, max(1, 12 - len(own)))]
        rng.shuffle(cands)
        out.append((nid, {"content": _note_content(r), "candidates": ", ".join(cands),
                          "answer": ", ".join(own)}))
    return out


def ner(w: _World, rng: np.random.Generator) -> list[tuple[int, dict]]:
    out = []
    ents = w.entities.sort(["note_id", "field", "start"])
    for (nid,), group in ents.group_by(["note_id"], maintain_order=True):
        r = w.rows.get(int(nid))
        if r is None:
            continue
        labels = sorted(set(group["label"].to_list()))
        label = labels[rng.integers(len(labels))]
        # Title entities first, then the body's, in the order they appear.
        texts = [t for f in ("title", "body")
                 for t in group.filter((pl.col("label") == label) & (pl.col("field") == f))
                 ["text"].to_list()]
        found = list(dict.fromkeys(t for t in texts if "," not in t))
        if found:
            out.append((int(nid), {"question": f"Please identify all '{label.lower()}' "
                                               "entities",
                                   "content": _plain(r), "answer": ", ".join(found)}))
    return out


def _questions(w: _World) -> dict[int, list[tuple[str, str]]]:
    qa: dict[int, list[tuple[str, str]]] = {}
    for nid, q, a in w.qa.select("note_id", "question", "answer").iter_rows():
        qa.setdefault(int(nid), []).append((q, a))
    return qa


def _foreign_question(w: _World, qa: dict, r: dict, rng: np.random.Generator) -> str | None:
    for _ in range(20):
        nid = w.other_note(r["category"], rng)
        if qa.get(nid):
            return qa[nid][rng.integers(len(qa[nid]))][0]
    return None


def mrc_simple(w: _World, rng: np.random.Generator) -> list[tuple[int, dict]]:
    qa, out = _questions(w), []
    for nid, r in w.rows.items():
        mine = qa.get(nid)
        if not mine:
            continue
        text = _plain(r)
        if rng.random() < 0.25:                 # unanswerable from this note
            q, answer = _foreign_question(w, qa, r, rng), []
            if q is None:
                continue
        else:
            q, a = mine[rng.integers(len(mine))]
            if a not in text or "[" in a or "]" in a:
                continue
            answer = [a]
        out.append((nid, {"query": q, "content": text, "answer": answer}))
    return out


def querycorr_explain(w: _World, rng: np.random.Generator) -> list[tuple[int, dict]]:
    qa, out = _questions(w), []
    for nid, r in w.rows.items():
        mine = qa.get(nid)
        if not mine:
            continue
        yes = rng.random() < 0.5
        q = mine[rng.integers(len(mine))][0] if yes else _foreign_question(w, qa, r, rng)
        if q is None:
            continue
        out.append((nid, {"sentence1": q, "sentence2": f"{r['title'] or ''} | {r['body'] or ''}",
                          "answer": "Yes" if yes else "No"}))
    return out


_SENTENCE = re.compile(r"(?<=[。！？!?\n.])")
CHLW_PROMPT = ("Comment: \n{comment}\n\nPossible highlight word options list:\n{options}\n\n"
               "Please provide a list of words you think are suitable for highlighting. If you "
               "think none are appropriate, output an empty list []. Your output is:")


def chlw(w: _World, rng: np.random.Generator) -> list[tuple[int, dict]]:
    """A sentence of the note as the comment; options: the world's highlight words in it and
    entities in it that are not highlights (the answer: the highlight options, or [])."""
    words: dict[int, list[str]] = {}
    for nid, word in w.highlights.iter_rows():
        words.setdefault(int(nid), []).append(word)
    ents: dict[int, list[str]] = {}
    for nid, text in w.entities.select("note_id", "text").iter_rows():
        ents.setdefault(int(nid), []).append(text)
    pool = [x for v in words.values() for x in v]
    out = []
    for nid, r in w.rows.items():
        sentences = [s.strip() for s in _SENTENCE.split(r["body"] or "") if s.strip()]
        if not sentences or nid not in words:
            continue
        sentence = sentences[rng.integers(len(sentences))]
        hits = [x for x in dict.fromkeys(words[nid]) if x in sentence]
        others = [x for x in dict.fromkeys(ents.get(nid, [])) if x in sentence
                  and x not in hits]
        options = [*hits, *others][:4]
        while len(options) < 2 and pool:        # an option from another note: not highlighted
            x = pool[rng.integers(len(pool))]
            if x not in sentence and x not in options:
                options.append(x)
        order = rng.permutation(len(options))
        options = [options[i] for i in order]
        answer = [x for x in options if x in hits]
        out.append((nid, {"content": CHLW_PROMPT.format(comment=sentence, options=repr(options)),
                          "answer": repr(answer)}))
    return out


def querycorr_topic(w: _World, rng: np.random.Generator) -> list[tuple[int, dict]]:
    """Graded query–note relevance: the world's labels 0–3 for the notes a search showed,
    -1 for a note of another category the query never met."""
    out = []
    for qid, nid, label in w.relevance.iter_rows():
        r, query = w.rows.get(int(nid)), w.queries.get(int(qid))
        if r is None or query is None:
            continue
        out.append((int(nid), {"content": _corr_content(query, r), "answer": str(int(label))}))
        if rng.random() < 0.1:
            other = w.other_note(r["category"], rng)
            out.append((other, {"content": _corr_content(query, w.rows[other]),
                                "answer": "-1"}))
    return out


def _corr_content(query: str, r: dict) -> str:
    tags = "; ".join(r["hashtags"] or [])
    body = (r["body"] or "").replace("\n", " ※ ")
    return f"```\nQuery: {query}\nNote: {r['title'] or ''}; {tags}; {body}\n```"


def querygen(w: _World, rng: np.random.Generator) -> list[tuple[int, dict]]:
    """A note and a search query it fully satisfies (world relevance 3)."""
    best: dict[int, list[str]] = {}
    for qid, nid, label in w.relevance.iter_rows():
        if label == 3 and int(qid) in w.queries:
            best.setdefault(int(nid), []).append(w.queries[int(qid)])
    out = []
    for nid, qs in best.items():
        r = w.rows.get(nid)
        if r is None:
            continue
        content = (f"The type of this note is: image and text, \nNote Title: {r['title'] or ''},"
                   f" \nMulti-level Classification Tags: {r['category']}/{r['subcategory']}, "
                   f"\nMain Content: {r['body'] or ''}, \nOCR Information from Cover Image: "
                   "None, \nPopular Comments: None.")
        out.append((nid, {"content": content, "answer": qs[rng.integers(len(qs))]}))
    return out


LEVEL_NAMES = {"BRAND": "Brand", "PRODUCT": "Product Name", "PLACE": "Place",
               "PERSON": "Person"}


def mrc_complex(w: _World, rng: np.random.Generator) -> list[tuple[int, dict]]:
    """A query that found the note, the kind of answer wanted (an entity type), and the
    note: every entity of that type with the sentence it is in as the reason; or the same
    query over a note of another category, which answers nothing."""
    ents: dict[int, list[tuple[str, str]]] = {}
    for nid, label, text in w.entities.select("note_id", "label", "text").iter_rows():
        ents.setdefault(int(nid), []).append((label, text))
    found: dict[int, str] = {}
    for qid, nid, label in w.relevance.iter_rows():
        if label >= 2 and int(qid) in w.queries:
            found.setdefault(int(nid), w.queries[int(qid)])
    out = []
    for nid, query in found.items():
        r = w.rows.get(nid)
        if r is None or nid not in ents:
            continue
        labels = sorted({lb for lb, _ in ents[nid]})
        label = labels[rng.integers(len(labels))]
        level = LEVEL_NAMES.get(label, label.title())
        doc, result = r, []
        if rng.random() < 0.4:                  # another category's note: nothing to extract
            doc = w.rows[w.other_note(r["category"], rng)]
        else:
            sentences = [s.strip() for s in _SENTENCE.split(_plain(r)) if s.strip()]
            for text in dict.fromkeys(t for lb, t in ents[nid] if lb == label):
                reason = next((s for s in sentences if text in s), text)
                result.append({"Option": text, "Reason": reason[:200]})
            result = result[:3]
        relevant = "relevant" if result else "not relevant"
        answer = (f"<rewrite_query>{level} for {query}</rewrite_query>\n"
                  f"<relevance_analysis>The Doc is {relevant} to the rewrite_query."
                  f"</relevance_analysis>\n"
                  f"<AnswerList>{json.dumps([x['Option'] for x in result], ensure_ascii=False)}"
                  f"</AnswerList>\n<Result>{json.dumps(result, ensure_ascii=False)}</Result>")
        content = (f"Query: \n{query}\nLevel:\n{level}\n\nDoc:\n<Doc>\n{doc['title'] or ''}\n"
                   f"{doc['body'] or ''}\n</Doc>\n")
        out.append((nid, {"content": content, "answer": answer}))
    return out


def gender(w: _World, rng: np.random.Generator) -> list[tuple[int, dict]]:
    return [(nid, {"content": _note_content(r),
                   "answer": "Yes" if abs(r["gender_appeal"] or 0.0) >= GENDER_THRESHOLD
                   else "No"})
            for nid, r in w.rows.items()]


def moderation(w: _World, rng: np.random.Generator) -> list[tuple[int, dict]]:
    from snsrec.data.schema import HARM_TYPES

    cands = ", ".join((HARM_NONE, *HARM_TYPES))
    return [(nid, {"content": _note_content(r), "candidates": cands,
                   "answer": (r["harm_type"] or HARM_NONE) if r["harmful"] else HARM_NONE})
            for nid, r in w.rows.items()]


BUILDERS: dict[str, Callable[[_World, np.random.Generator], list[tuple[int, dict]]]] = {
    "Note-Taxonomy-single": taxonomy_single,
    "Note-Taxonomy-multiple": taxonomy_multiple,
    "Note-Hashtag-single": hashtag_single,
    "Note-Hashtag-multiple": hashtag_multiple,
    "Note-NER": ner,
    "Note-MRC-simple": mrc_simple,
    "Note-MRC-complex": mrc_complex,
    "Note-QueryCorr-explain": querycorr_explain,
    "Note-CHLW": chlw,
    "Note-QueryCorr-topic": querycorr_topic,
    "Note-QueryGen": querygen,
    "Note-Gender": gender,
    "Note-Moderation": moderation,
}


def _sample(items: list[dict], max_items: int, rng: np.random.Generator,
            harmful_share: float | None = None, seed: int = 0) -> list[dict]:
    """At most ``max_items`` of ``items`` (a seeded sample, in their order); with
    ``harmful_share``, harmful answers make up that share of it as far as there are
    enough of them, and benign ones the rest — drawn from their own stream of ``seed``,
    while ``rng`` still draws the natural sample, so the splits sampled after this one
    do not change."""
    natural = items if len(items) <= max_items else \
        [items[i] for i in np.sort(rng.choice(len(items), max_items, replace=False))]
    if harmful_share is None:
        return natural
    rng = np.random.default_rng([seed, zlib.crc32(b"harmful_share")])
    harmful = [i for i, it in enumerate(items) if it["answer"] != HARM_NONE]
    benign = [i for i, it in enumerate(items) if it["answer"] == HARM_NONE]
    n_h = min(len(harmful), round(harmful_share * max_items))
    n_b = min(len(benign), max_items - n_h)
    keep = np.concatenate([rng.choice(harmful, n_h, replace=False),
                           rng.choice(benign, n_b, replace=False)]).astype(np.int64)
    return [items[i] for i in np.sort(keep)]


def _stratified(items: list[dict], max_items: int, seed: int, split: str) -> list[dict]:
    """Note-Moderation's ``split`` (valid or test) sample: ``EVAL_HARMFUL_SHARE`` of it
    harmful, benign the rest — fewer items where the split's notes have too few harmful
    ones, so the share holds — drawn from the split's own stream of ``seed``, and ordered
    so that every prefix keeps the share (``llm eval --limit`` scores the first items)."""
    rng = np.random.default_rng([seed, zlib.crc32(f"harmful_share:{split}".encode())])
    harmful = [i for i, it in enumerate(items) if it["answer"] != HARM_NONE]
    benign = [i for i, it in enumerate(items) if it["answer"] == HARM_NONE]
    n_h = min(len(harmful), round(EVAL_HARMFUL_SHARE * max_items))
    n_b = min(len(benign), max_items - n_h,
              round(n_h * (1 - EVAL_HARMFUL_SHARE) / EVAL_HARMFUL_SHARE))
    # The i-th of a kind's n items sits at (i + ½) / n: the two kinds evenly interleaved.
    order = sorted([((k + 0.5) / len(kind), int(i)) for kind in (
        np.sort(rng.choice(harmful, n_h, replace=False)),
        np.sort(rng.choice(benign, n_b, replace=False))) for k, i in enumerate(kind)])
    return [items[i] for _, i in order]


def build_tasks(world: str | Path, out: str | Path, *, tasks: list[str] | None = None,
                max_items: int = 500, seed: int = 0,
                harmful_share: float | None = None, force: bool = False) -> dict[str, Any]:
    """Write every task × split (at most ``max_items`` items each, a seeded sample) and
    ``manifest.json`` (counts, world, seed); return the manifest.

    ``harmful_share`` samples Note-Moderation's train split so that harmful notes are
    that share of it (the world has ~4% harmful notes: a model fine-tuned on the natural
    mix learns to answer ``none``); its valid and test splits are ``_stratified``
    whatever it is. The splits of notes stay the seeded hash's: a stratified test sample
    holds test notes only."""
    world, out = Path(world), Path(out)
    names = tasks or list(BUILDERS)
    unknown = [t for t in names if t not in BUILDERS]
    if unknown:
        raise ConfigError(f"unknown task(s) {unknown}; tasks: {', '.join(BUILDERS)}")
    if max_items < 1:
        raise ConfigError(f"--max-items {max_items}: give at least 1")
    if harmful_share is not None and not 0.0 < harmful_share < 1.0:
        raise ConfigError(f"--harmful-share {harmful_share}: give a share in (0, 1)")
    w = _World(world)
    out_dir(out, "llm tasks build", force=force, legacy=["manifest.json"], inputs=[world])
    counts: dict[str, dict[str, int]] = {}
    for name in names:
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        by_split: dict[str, list[dict]] = {s: [] for s, _ in SPLITS}
        for nid, item in BUILDERS[name](w, rng):
            by_split[split_of(nid, seed)].append(item)
        counts[name] = {}
        for split, items in by_split.items():
            moderation = name == "Note-Moderation"
            if moderation and split != "train":     # sampled after train: train is as it was
                items = _stratified(items, max_items, seed, split)
            else:
                items = _sample(items, max_items, rng, harmful_share if moderation else None,
                                seed)
            write_text(out / split / f"{name}.json",
                       json.dumps(items, ensure_ascii=False, indent=4) + "\n")
            counts[name][split] = len(items)
        echo(f"tasks: {name}: " + ", ".join(f"{s} {n:,}" for s, n in counts[name].items()))
    manifest = {"world": str(world), "seed": seed, "max_items": max_items,
                **({"harmful_share": harmful_share} if harmful_share is not None else {}),
                "eval_harmful_share": EVAL_HARMFUL_SHARE,
                "splits": dict(SPLITS), "counts": counts}
    write_json(out / "manifest.json", manifest)
    return manifest


def task_files(tasks: Path, split: str) -> list[Path]:
    """The task files of a suite's ``split`` (``tasks/split/*.json``, or ``tasks/*.json``
    when there is no split folder): one per task a prompt is known for."""
    root = tasks / split if (tasks / split).is_dir() else tasks
    files = sorted(p for p in root.glob("*.json") if p.stem in PROMPTS)
    if not files:
        raise DataError(f"{root}: no task files ({', '.join(sorted(PROMPTS))}.json); build them "
                        "with `snsrec llm tasks build` or point at SNS-Bench's data folder")
    return files
