"""The serving pipeline: a user's stored behaviour → the retrieval run's user tower → …

Built up in slices. ``user_rows`` turns what the store keeps for one user
(``Store.behaviours``) into the user tower's inputs exactly as training built
them (``snsrec.data.sequences.history_arrays`` over a one-user
``BehaviourLog``), so a served user looks to the model as a training sample did.
Clicks on notes outside the run's corpus (posted after its training) and
searches for queries outside its query vocabulary are not tokens the run can
read; they are left out and counted.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from snsrec.data.schema import SCENARIOS
from snsrec.data.sequences import (
    NOTE,
    QUERY,
    BehaviourLog,
    Corpus,
    SequenceConfig,
    rows_in,
)
from snsrec.errors import DataError, ModelError
from snsrec.index.ann import AnnIndex


def query_rows(corpus: Corpus) -> dict[str, int]:
    """Query text → its row in the run's query vocabulary."""
    return {q: i for i, q in enumerate(corpus.queries)}


def user_rows(behaviours: dict[str, list], corpus: Corpus, user_id: int, now: int,
              sequence: SequenceConfig, target: str, queries_index: dict[str, int] | None = None
              ) -> tuple[dict[str, np.ndarray], int]:
    """``([1, L]`` history arrays + ``target_scenario`` + ``query_ts``, behaviours left out).

    ``queries_index`` (``query_rows(corpus)``) is built once by a server, not per request."""
    from snsrec.data.sequences import history_arrays

    if target not in SCENARIOS:
        raise DataError(f"scenario {target!r}: use one of {', '.join(SCENARIOS)}")
    clicks = behaviours.get("clicks", [])
    queries = behaviours.get("queries", [])
    pos, known = rows_in(corpus.note_ids, [c[0] for c in clicks])
    index = queries_index if queries_index is not None else query_rows(corpus)
    q_rows = np.asarray([index.get(q, -1) for q, _ in queries], np.int64)
    q_known = q_rows >= 0
    scen = {s: i for i, s in enumerate(SCENARIOS)}
    cols = {
        "ts": [np.asarray([c[2] for c in clicks], np.int64)[known],
               np.asarray([t for _, t in queries], np.int64)[q_known]],
        "scenario": [np.asarray([scen[c[1]] for c in clicks], np.int8)[known],
                     np.full(int(q_known.sum()), scen["search"], np.int8)],
        "kind": [np.full(int(known.sum()), NOTE, np.int8),
                 np.full(int(q_known.sum()), QUERY, np.int8)],
        "item": [pos[known], q_rows[q_known]]}
    merged = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in cols.items()}
    # As BehaviourLog.from_tables orders a user's rows: by time, a query before its clicks.
    order = np.lexsort((-merged["kind"], merged["ts"]))
    n = len(order)
    log = BehaviourLog(np.full(n, user_id, np.int64), merged["ts"][order],
                       merged["scenario"][order], merged["kind"][order],
                       merged["item"][order].astype(np.int64), np.zeros(n, bool),
                       corpus.note_ids, corpus.queries)
    rows = history_arrays(log, np.array([user_id]), np.array([now]), sequence)
    rows.update(target_scenario=np.array([SCENARIOS.index(target)], np.int8),
                query_ts=np.array([now], np.int64))
    return rows, int((~known).sum() + (~q_known).sum())



class Retriever:
    """A retrieval run served: its user tower, its corpus and its ANN index.

    ``retrieve`` turns a user's rows (``user_rows``) into the run's K interest
    vectors and asks the index for the top notes of their union (the run's
    fresh-note channel included), dropping ``exclude`` (already seen, taken
    down); each candidate carries the interest that scores it highest — the
    "why" a response shows.
    """

    INTEREST_CACHE = 50_000         # users' interest vectors kept (a few MB)

    def __init__(self, run_dir: str | Path, index_kind: str = "hnsw"):
        import torch

        from snsrec.index.build import RunIndex, saved_run_index, saved_vectors
        from snsrec.runs import load_run
        from snsrec.train.pipeline import RunConfig

        run_dir = Path(run_dir)
        run = load_run(run_dir)
        if run.model.family != "retriever":
            raise ModelError(f"{run_dir}: not a retrieval run with a user tower (e.g. redrec); "
                             "serve a `snsrec train` run of model.name: redrec")
        self.run_dir, self.model, self.corpus = run_dir, run.model.eval(), run.feature_map
        self.sequence = RunConfig.model_validate(run.config).retrieval.sequence
        self.queries_index = query_rows(self.corpus)
        saved = saved_run_index(run_dir, index_kind)
        self.index = RunIndex.load(saved)
        self.vectors = saved_vectors(saved, len(self.corpus))
        if hasattr(self.model, "freeze_vectors"):      # the user tower reads these then,
            self.model.freeze_vectors(torch.from_numpy(self.vectors))   # not the text tower
        self.extra: dict[int, np.ndarray] = {}          # posted notes' vectors
        self._interests: OrderedDict[bytes, np.ndarray] = OrderedDict()    # LRU, interests
        self._cache_lock = threading.Lock()

    def rows(self, behaviours: dict[str, list], user_id: int, now: int, target: str
             ) -> tuple[dict[str, np.ndarray], int]:
        return user_rows(behaviours, self.corpus, user_id, now, self.sequence, target,
                         self.queries_index)

    def interests(self, rows: dict[str, np.ndarray]) -> np.ndarray:
        """The user tower's ``[K, dim]`` vectors of one user's rows. Kept by the rows' bytes
        (the query time aside: the towers read the history's recency buckets, not it), so
        a user asking again with nothing new — a refresh, the next page, a search after
        the feed — costs a lookup; the same rows give the same vectors."""
        import hashlib

        import torch

        from snsrec.data.batches import to_tensors

        h = hashlib.blake2b(digest_size=16)
        for k in sorted(rows):
            if k != "query_ts":
                h.update(k.encode())
                h.update(np.ascontiguousarray(rows[k]).tobytes())
        key = h.digest()
        with self._cache_lock:
            hit = self._interests.get(key)
            if hit is not None:
                self._interests.move_to_end(key)
                return hit
        with torch.no_grad():
            out = self.model.user_vectors(to_tensors(rows, "cpu"))[0].numpy()
        out.flags.writeable = False
        with self._cache_lock:
            self._interests[key] = out
            if len(self._interests) > self.INTEREST_CACHE:
                self._interests.popitem(last=False)
        return out

    def search(self, query: np.ndarray, k: int, exclude: set[int] | None = None
               ) -> list[dict[str, Any]]:
        """The notes nearest a ``[1, dim]`` query vector (``encode``), best first."""
        return self.retrieve(query, k, exclude)

    def encode(self, texts: list[str]) -> np.ndarray:
        """``[n, dim]`` unit vectors of new texts (posted notes, search queries)."""
        return self.model.encode_texts(texts).numpy()

    def add(self, note_ids: list[int], vectors: np.ndarray) -> None:
        """Index posted notes at once (cold start): into the fresh-note index when the run
        serves one, else the main index; their vectors are kept for the "why"."""
        target = self.index.fresh if self.index.fresh is not None else self.index.main
        target.add(np.asarray(note_ids, np.int64), vectors)
        self.extra.update(zip((int(i) for i in note_ids), vectors, strict=True))

    def vectors_of(self, note_ids: list[int]) -> np.ndarray:
        """``[n, dim]`` vectors of corpus or posted notes (zeros for unknown ids)."""
        pos, known = rows_in(self.corpus.note_ids, note_ids)
        out = np.zeros((len(note_ids), self.vectors.shape[1]), np.float32)
        out[known] = self.vectors[pos[known]]
        for j in np.flatnonzero(~known).tolist():
            out[j] = self.extra.get(int(note_ids[j]), 0.0)
        return out

    def retrieve(self, interests: np.ndarray, k: int, exclude: set[int] | None = None,
                 index: Any = None) -> list[dict[str, Any]]:
        """Up to ``k`` candidates of ``[K, dim]`` query vectors: ``{"note_id", "score",
        "interest"}``, best first (``interest``: the row of ``interests`` that scores the
        note highest). ``index``: another index to search (e.g. the ads slot's)."""
        exclude = exclude or set()
        index = self.index if index is None else index
        # A heavy user has seen thousands of notes: ask for a few more than k and widen only
        # when the excluded ones leave too few (a search of k + |seen| would be slow).
        fetch, total = 2 * k, len(index)
        while True:
            scores, ids = index.search_interests(interests, min(fetch, total))
            keep = [(s, i) for s, i in zip(scores.tolist(), ids.tolist(), strict=True)
                    if i >= 0 and i not in exclude][:k]
            if len(keep) == k or fetch >= total:
                break
            fetch *= 4
        if not keep:
            return []
        which = (self.vectors_of([i for _, i in keep]) @ interests.T).argmax(1)
        return [{"note_id": int(i), "score": float(s), "interest": int(w)}
                for (s, i), w in zip(keep, which.tolist(), strict=True)]


class Ranker:
    """A CTR run served: candidates of one request → click probabilities.

    The run's features come from a ``RequestEncoder`` over the world's tables: the
    note and user tables are encoded once, a request costs its own candidates, and
    the behaviour-sequence features read ``clicks`` — the user's clicks from the
    serving store — so the user's latest clicks count (without ``clicks`` the
    world's events are the history: what training saw). Every candidate is scored at
    ``position`` (0 by default: ranked as if shown first, so the learned position
    bias does not decide the order). Notes posted through the service
    (``add_notes``) are ranked from their cards.
    """

    def __init__(self, run_dir: str | Path, tables: Any):
        from snsrec.data.features import FeatureMap
        from snsrec.runs import load_run

        run_dir = Path(run_dir)
        run = load_run(run_dir)
        if not isinstance(run.feature_map, FeatureMap):
            raise ModelError(f"{run_dir}: not a ranking run (it has no feature map); serve a "
                             "`snsrec train` CTR run (e.g. model.name: deepfm) as the ranker")
        self.run_dir, self.model, self.fmap, self.tables = run_dir, run.model.eval(), \
            run.feature_map, tables
        self.name = run.config.get("model", {}).get("name", "?")
        self.encoder = run.feature_map.request_encoder(tables)

    def add_notes(self, cards: list[dict[str, Any]]) -> None:
        """Posted notes (rows of the notes table; missing columns null)."""
        self.encoder.add_rows("notes", cards)

    def score(self, user_id: int, note_ids: list[int], scenario: str, ts: int,
              position: int = 0, query: str | None = None,
              clicks: list[tuple[int, str, int]] | None = None) -> np.ndarray:
        """P(click) of each note; ``clicks``: the user's (note_id, scenario, ts) clicks."""
        import torch

        from snsrec.data.batches import to_tensors

        if not note_ids:
            return np.zeros(0)
        inputs = self.encoder.transform({
            "user_id": user_id, "note_ids": note_ids, "scenario": scenario, "ts": ts,
            "position": position, "query": query}, clicks)
        with torch.no_grad():
            logit = self.model(to_tensors(inputs, "cpu"))["logit"]
        return torch.sigmoid(logit.double()).numpy()


class Moderation:
    """Harmful probabilities of notes (from `snsrec llm moderate` or the n-gram baseline)
    and the serving threshold; a note without a score passes (counted by the caller).

    ``scorer`` (texts → P(harmful)) scores notes posted through the service; without
    one a posted note passes unscored. ``enabled`` False serves everything (the
    moderation-off arm of an A/B test) while still reporting the scores.
    """

    def __init__(self, scores: dict[int, float] | None = None, threshold: float = 0.5,
                 scorer: Any = None, enabled: bool = True):
        if not 0.0 < threshold <= 1.0:
            raise DataError(f"moderation threshold {threshold}: give a probability in (0, 1]")
        self.scores, self.threshold = dict(scores or {}), threshold
        self.scorer, self.enabled = scorer, enabled

    def score_new(self, note_ids: list[int], texts: list[str]) -> list[float | None]:
        """Score posted notes with ``scorer`` (kept for ``blocked``); None without one."""
        if self.scorer is None:
            return [None] * len(note_ids)
        p = [float(x) for x in self.scorer(texts)]
        self.scores.update(zip(note_ids, p, strict=True))
        return p

    @classmethod
    def from_parquet(cls, path: str | Path, threshold: float = 0.5,
                     scorer: Any = None) -> Moderation:
        """A scores table with ``note_id`` and ``p_harmful`` (`snsrec llm moderate`'s)."""
        import polars as pl

        from snsrec.io import parquet_columns

        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such moderation scores file; write one with "
                            "`snsrec llm moderate`")
        missing = {"note_id", "p_harmful"} - set(parquet_columns(path))
        if missing:
            raise DataError(f"{path}: no column(s) {', '.join(sorted(missing))}; a moderation "
                            "scores table has note_id and p_harmful")
        t = pl.read_parquet(path, columns=["note_id", "p_harmful"])
        return cls(dict(zip(t["note_id"].to_list(), t["p_harmful"].to_list(), strict=True)),
                   threshold, scorer)

    def blocked(self, note_id: int) -> bool:
        return self.enabled and self.scores.get(note_id, 0.0) >= self.threshold


def diversify(candidates: list[dict[str, Any]], topic_of: dict[int, str], k: int,
              per_topic: int) -> list[dict[str, Any]]:
    """The best ``k`` of ``candidates`` (already ordered) with at most ``per_topic`` a topic;
    when the cap leaves fewer than ``k``, the capped-out ones fill in, in order."""
    if per_topic < 1:
        raise DataError(f"diversity per_topic {per_topic}: give at least 1")
    taken, spill, count = [], [], {}
    for c in candidates:
        topic = topic_of.get(c["note_id"], "")
        if count.get(topic, 0) < per_topic:
            count[topic] = count.get(topic, 0) + 1
            taken.append(c)
        else:
            spill.append(c)
        if len(taken) == k:
            return taken
    return taken + spill[:k - len(taken)]


def note_text(card: dict[str, Any]) -> str:
    """A note's text as the corpus writes it ("title / body / #tags")."""
    from snsrec.data.sequences import note_text as corpus_text

    return corpus_text(card.get("title"), card.get("body"), card.get("hashtags"))


class Platform:
    """retrieve → rank → moderate → diversify over a store: what the service serves.

    ``notes`` maps note id → its card (title, hashtags, category, subcategory);
    the topic of the diversity cap is the subcategory. ``feed`` serves a
    scenario's recommendations; ``search`` a query's results, personalised;
    ``post_note`` takes a new note in (encoded, moderated, indexed at once).
    Search ranks by ``relevance + personalize · interest + click_weight · P(click)``:
    the query's cosine with the note, the user's best search-interest cosine, and
    the ranker's click probability (the ranker does not read the query).
    """

    def __init__(self, store: Any, retriever: Retriever, ranker: Ranker,
                 moderation: Moderation, notes: dict[int, dict[str, Any]],
                 retrieve_k: int = 200, per_topic: int = 3, personalize: float = 0.5,
                 click_weight: float = 1.0):
        self.store, self.retriever, self.ranker = store, retriever, ranker
        self.moderation, self.notes = moderation, notes
        self.retrieve_k, self.per_topic = retrieve_k, per_topic
        self.personalize, self.click_weight = personalize, click_weight
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()     # event batches: one at a time from here
        # The ads slot searches the ads alone (excluding every other note would mean a set
        # of most of the corpus and an ANN fetch widened until enough ads turned up).
        ads = np.asarray(sorted(n for n, c in notes.items() if c.get("is_ad")), np.int64)
        self.ads_index = AnnIndex(retriever.vectors.shape[1], "flat").build(
            ads, retriever.vectors_of(ads.tolist())) if len(ads) else None
        known = [*notes, *retriever.corpus.note_ids.tolist()]
        self.next_id = max(known, default=0) + 1
        self.posted_upto = -1               # the highest posted note id taken in
        self.sync()

    # -- the user -----------------------------------------------------------------------
    def _user(self, user_id: int, now: int, scenario: str
              ) -> tuple[dict[str, list], np.ndarray, int]:
        behaviours = self.store.behaviours(user_id, max(self.retriever.sequence.blocks.values()))
        rows, unread = self.retriever.rows(behaviours, user_id, now, scenario)
        return behaviours, self.retriever.interests(rows), unread

    def _moderate(self, cands: list[dict[str, Any]]
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        passed, filtered = [], []
        for c in cands:
            (filtered if self.moderation.blocked(c["note_id"]) else passed).append(c)
        return passed, filtered

    def _card(self, note_id: int) -> dict[str, Any]:
        return self.notes.get(note_id, {"note_id": note_id})

    def _response(self, user_id: int, served: list[dict[str, Any]],
                  filtered: list[dict[str, Any]], retrieved: int, unread: int,
                  show_filtered: bool) -> dict[str, Any]:
        out = {"user_id": user_id, "items": served, "retrieved": retrieved,
               "filtered": len(filtered), "unread_behaviours": unread}
        if show_filtered:
            out["filtered_items"] = [{**self._card(c["note_id"]),
                                      "p_harmful": self.moderation.scores.get(c["note_id"])}
                                     for c in filtered]
        return out

    # -- endpoints ----------------------------------------------------------------------
    def feed(self, user_id: int, k: int, now: int, scenario: str = "feed",
             show_filtered: bool = False) -> dict[str, Any]:
        self.sync()
        behaviours, interests, unread = self._user(user_id, now, scenario)
        exclude = self.store.seen(user_id) | self.store.deleted()
        ads_only = self.ads_index if scenario == "ads" else None     # the ads slot: ads only
        cands, filtered = self._moderate(
            self.retriever.retrieve(interests, self.retrieve_k, exclude, index=ads_only))
        p = self.ranker.score(user_id, [c["note_id"] for c in cands], scenario, now,
                              clicks=behaviours.get("clicks"))
        for c, s in zip(cands, p.tolist(), strict=True):
            c["p_click"] = s
        cands.sort(key=lambda c: -c["p_click"])
        topic = {c["note_id"]: self._card(c["note_id"]).get("subcategory", "") for c in cands}
        served = diversify(cands, topic, k, self.per_topic)
        because = self._because(served, behaviours)
        items = [{**self._card(c["note_id"]), "score": c["p_click"],
                  "retrieval_score": c["score"],
                  "reason": {"interest": c["interest"], **because.get(c["note_id"], {})}}
                 for c in served]
        return self._response(user_id, items, filtered, len(cands) + len(filtered), unread,
                              show_filtered)

    def search(self, user_id: int, query: str, k: int, now: int,
               show_filtered: bool = False) -> dict[str, Any]:
        """The query's notes (the query vector's nearest, taken-down ones left out), ranked by
        relevance, the user's search interests and the ranker's click probability."""
        self.sync()
        behaviours, interests, unread = self._user(user_id, now, "search")
        q = self.retriever.encode([query])
        cands, filtered = self._moderate(
            self.retriever.search(q, self.retrieve_k, self.store.deleted()))
        ids = [c["note_id"] for c in cands]
        cosines = self.retriever.vectors_of(ids) @ interests.T       # [candidates, K]
        p = self.ranker.score(user_id, ids, "search", now, query=query,
                              clicks=behaviours.get("clicks"))
        for c, cos, s in zip(cands, cosines, p.tolist(), strict=True):
            personal = float(cos.max())
            c.update(relevance=c["score"], interest=int(cos.argmax()), p_click=s,
                     score=c["score"] + self.personalize * personal + self.click_weight * s)
        cands.sort(key=lambda c: -c["score"])
        items = [{**self._card(c["note_id"]), "score": c["score"],
                  "relevance": c["relevance"], "p_click": c["p_click"],
                  "reason": {"interest": c["interest"], "query": query}}
                 for c in cands[:k]]
        out = self._response(user_id, items, filtered, len(cands) + len(filtered), unread,
                             show_filtered)
        out["query"] = query
        return out

    def post_note(self, card: dict[str, Any], now: int) -> dict[str, Any]:
        """A new note: given an id by the store, stored, moderated and indexed (searchable
        at once here; other servers on the store take it in at their next request)."""
        with self.lock:
            nid = self.store.post_note({**card, "created_at": now}, floor=self.next_id)
            taken = self._sync_locked()
        return next(t for t in taken if t["note_id"] == nid)

    def unknown_notes(self, note_ids: list[int]) -> set[int]:
        """The ids among ``note_ids`` that are no note of the platform's (taken-down notes
        are known: their late events still count). Notes another server posted count."""
        missing = {n for n in note_ids if n not in self.notes}
        if missing:
            self.sync()
            missing = {n for n in missing if n not in self.notes}
        return missing

    def add_events(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Events stored durably: ``{"accepted", "duplicates"}``; when some are about notes
        the platform does not have, nothing is stored: ``{"unknown": sorted ids}``."""
        unknown = self.unknown_notes([int(r["note_id"]) for r in rows])
        if unknown:
            return {"unknown": sorted(unknown)}
        with self.write_lock:
            accepted, duplicates = self.store.add_events(rows)
        return {"accepted": accepted, "duplicates": duplicates}

    def note(self, note_id: int) -> tuple[str, dict[str, Any] | None]:
        """(``"ok"``, the note) — a posted note as stored, a world note's card — or
        (``"taken down"`` / ``"missing"``, None)."""
        if note_id in self.store.deleted():
            return "taken down", None
        note = self.store.get_note(note_id) or self.notes.get(note_id)
        return ("ok", note) if note is not None else ("missing", None)

    def take_down(self, note_id: int) -> bool | None:
        """Take a note down: True, False when it already was, None when there is no such note."""
        if self.store.get_note(note_id) is None and note_id not in self.notes \
                and note_id not in self.store.deleted():
            return None
        return self.store.delete_note(note_id)

    def health(self) -> dict[str, int]:
        return {"index_size": len(self.retriever.index), "events": self.store.count_events()}

    def sync(self) -> None:
        """Take in notes posted through the store since the last look — by this server or
        by another one sharing the store (a worker process)."""
        new = self.store.posted_notes(after=self.posted_upto)
        if new:
            with self.lock:
                self._sync_locked(new)

    def _sync_locked(self, new: list[dict[str, Any]] | None = None
                     ) -> list[dict[str, Any]]:
        """Take in ``new`` (read again when absent), skipping what another thread took in
        while this one waited for the lock."""
        if new is None:
            new = self.store.posted_notes(after=self.posted_upto)
        new = [n for n in new if int(n["note_id"]) > self.posted_upto]
        if not new:
            return []
        taken = self._take_in(new)
        self.posted_upto = max(t["note_id"] for t in taken)
        return taken

    def _take_in(self, notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = [int(n["note_id"]) for n in notes]
        texts = [note_text(n) for n in notes]
        self.retriever.add(ids, self.retriever.encode(texts))
        from snsrec.llm.moderation import note_text as moderated_text

        p = self.moderation.score_new(ids, [moderated_text(
            {"title": n.get("title"), "body": n.get("body")}) for n in notes])
        self.ranker.add_notes([{**n, "created_at": _datetime(n.get("created_at"))}
                               for n in notes])
        out = []
        for n, ph in zip(notes, p, strict=True):
            card = {k: n.get(k) for k in CARD} | {"note_id": int(n["note_id"])}
            self.notes[card["note_id"]] = card
            self.next_id = max(self.next_id, card["note_id"] + 1)
            out.append({**card, "p_harmful": ph,
                        "blocked": self.moderation.blocked(card["note_id"])})
        return out

    def _because(self, served: list[dict[str, Any]], behaviours: dict[str, list]
                 ) -> dict[int, dict[str, Any]]:
        """Each served note's closest clicked note in the user's history and its scenario."""
        hist = [(n, s) for n, s, _ in behaviours.get("clicks", [])]
        if not hist or not served:
            return {}
        h = self.retriever.vectors_of([n for n, _ in hist])
        ok = np.flatnonzero(np.abs(h).sum(1) > 0)          # notes the retriever knows
        if not len(ok):
            return {}
        c = self.retriever.vectors_of([x["note_id"] for x in served])
        best = (c @ h[ok].T).argmax(1)
        out = {}
        for x, b in zip(served, best.tolist(), strict=True):
            note, scenario = hist[ok[b]]
            out[x["note_id"]] = {"because_note": note, "because_scenario": scenario,
                                 "because_title": self._card(note).get("title")}
        return out


CARD = ("note_id", "author_id", "title", "body", "hashtags", "category", "subcategory",
        "language", "is_ad")


def _datetime(ts: int | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(int(ts), UTC).replace(
        tzinfo=None)
