"""Text side of the synthetic world: vocabulary, notes, queries, relevance labels."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from snsrec.data.schema import HARM_TYPES
from snsrec.data.world import vocab as V
from snsrec.data.world.text import (
    choose_language,
    count_tokens,
    has_trigger,
    make_note_text,
    make_query,
    relevance_label,
    relevance_labels,
    subcat_vocab,
)
from snsrec.errors import ConfigError

NAMES = ("food", "travel", "beauty", "fashion", "fitness", "pets", "tech", "parenting", "home",
         "finance", "study", "games", "music", "film", "photography", "cars", "outdoors",
         "crafts", "health", "career", "books", "art", "dance", "comedy")
LANGS = ("en", "zh", "mixed")
HARMS = (None, *HARM_TYPES)


def _tokens(text: str) -> set[str]:
    """English words plus Chinese character bigrams: what a bag-of-words model sees."""
    low = text.lower()
    out = set(re.findall(r"[a-z0-9']+", low))
    for run in re.findall(r"[\u4e00-\u9fff]+", low):
        out.update(run[i:i + 2] for i in range(max(1, len(run) - 1)))
    return out


def _notes(seed: int, n: int, harm: str | None, language: str | None = None):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        topic, sub = int(rng.integers(V.N_TOPICS)), int(rng.integers(3))
        lang = language or choose_language(rng)
        sec = int(rng.integers(V.N_TOPICS)) if rng.random() < 0.4 else None
        note = make_note_text(rng, topic, sub, language=lang, n_tokens=int(rng.integers(30, 201)),
                              harm_type=harm, clickbait=float(rng.random()),
                              secondary_topic=sec, is_ad=harm is None and rng.random() < 0.15)
        out.append(note)
    return out


# ----------------------------------------------------------------------------- vocabulary

def test_topics_have_the_listed_names_and_sizes():
    assert V.TOPIC_NAMES == NAMES and V.N_TOPICS == 24 and len(V.TOPICS) == 24
    assert V.ENTITY_LABELS == ("BRAND", "PLACE", "PRODUCT", "PERSON")
    assert V.HARM_TYPES == HARM_TYPES and tuple(V.HARM) == HARM_TYPES
    assert len(V.CITIES) >= 12
    for t in V.TOPICS:
        assert len(t.subcategories) >= 3, t.name
        assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", s) for s in t.subcategories), t.name
        assert len(t.sub_words_en) == len(t.sub_words_zh) == len(t.subcategories)
        assert min(map(len, t.sub_words_en)) >= 8 and min(map(len, t.sub_words_zh)) >= 6
        assert len(t.words_en) >= 30 and len(t.words_zh) >= 20 and len(t.hashtags) >= 8
        assert not any(h.startswith("#") for h in t.hashtags)
        assert any(h.isascii() for h in t.hashtags) and not all(h.isascii() for h in t.hashtags)
        for gaz in (t.brands, t.places, t.products, t.people):
            assert len(gaz) >= 4 and all(gaz), t.name
        assert -1.0 <= t.gender_appeal <= 1.0
    appeal = {t.name: t.gender_appeal for t in V.TOPICS}
    assert appeal["beauty"] > 0.5 > -0.5 > appeal["cars"]


def test_no_trigger_word_hides_in_safe_vocabulary():
    """Subtle harmful notes use topic filler too, so topic words must be trigger-free."""
    triggers = tuple(w for lex in V.HARM.values() for w in lex.triggers)
    for t in V.TOPICS:
        words = (t.words_en + t.words_zh + t.hashtags + t.brands + t.places + t.products
                 + t.people + sum(t.sub_words_en, ()) + sum(t.sub_words_zh, ()))
        bad = [w for w in words if has_trigger(w, triggers)]
        assert not bad, (t.name, bad)
    generic = (V.FUNCTION_EN + V.EMOTIVE_EN + V.GENERIC_EN + V.FUNCTION_ZH + V.EMOTIVE_ZH
               + V.GENERIC_ZH + V.CLICKBAIT_EN + V.CLICKBAIT_ZH + V.CITIES)
    assert not [w for w in generic if has_trigger(w, triggers)]
    for lex in V.HARM.values():
        for slots in (lex.slots_en, lex.slots_zh):
            for name, phrases in slots:
                # every slot can be written subtly
                assert any(not has_trigger(p, lex.triggers) for p in phrases), (lex.name, name)
            # and every type can be written obviously in both languages
            assert any(has_trigger(p, lex.triggers) for _, ps in slots for p in ps), lex.name
        literals = re.sub(r"\{\w+\}", " ", str(lex.templates_en + lex.titles_en))
        assert not has_trigger(literals, lex.triggers), lex.name


def test_subcat_vocab():
    assert subcat_vocab(0, 0, "en") == V.TOPICS[0].sub_words_en[0]
    assert subcat_vocab(0, 0, "zh") == V.TOPICS[0].sub_words_zh[0]
    assert set(subcat_vocab(0, 0, "mixed")) >= set(V.TOPICS[0].sub_words_zh[0])


# ----------------------------------------------------------------------------- notes

def test_same_seed_same_note_and_different_seed_different_note():
    for lang in LANGS:
        for harm in HARMS:
            kw = {"language": lang, "n_tokens": 80, "harm_type": harm, "clickbait": 0.5,
                  "secondary_topic": 4, "is_ad": harm is None}
            a = make_note_text(np.random.default_rng(3), 2, 1, **kw)
            b = make_note_text(np.random.default_rng(3), 2, 1, **kw)
            c = make_note_text(np.random.default_rng(4), 2, 1, **kw)
            assert a == b
            assert a != c


@pytest.mark.parametrize("language", LANGS)
def test_notes_are_well_formed(language):
    rng = np.random.default_rng(11)
    seen = {("title", lab): 0 for lab in V.ENTITY_LABELS} | {
        ("body", lab): 0 for lab in V.ENTITY_LABELS}
    for i in range(300):
        harm = HARMS[i % len(HARMS)]
        n = int(rng.integers(30, 201))
        note = make_note_text(rng, i % 24, i % 3, language=language, n_tokens=n, harm_type=harm,
                              clickbait=(i % 7) / 6, secondary_topic=(i * 5) % 24 if i % 2 else None,
                              is_ad=harm is None and i % 4 == 0)
        assert note.language == language
        assert count_tokens(note.body, language) == n
        assert 4 <= count_tokens(note.title, language) <= 14, note.title
        fields = {"title": note.title, "body": note.body}
        for field, start, end, label, text in note.entities:
            assert fields[field][start:end] == text and label in V.ENTITY_LABELS
            seen[(field, label)] += 1
        assert 1 <= len(note.qa) <= 3
        for q, a in note.qa:
            assert q and a and a in note.body
        assert 2 <= len(note.highlights) <= 5 and len(set(note.highlights)) == len(note.highlights)
        assert all(h in note.title or h in note.body for h in note.highlights)
        assert 1 <= len(note.hashtags) <= 6 and len(set(note.hashtags)) == len(note.hashtags)
        assert all(h and not h.startswith("#") for h in note.hashtags)
    assert all(seen.values()), seen


def test_language_surface():
    rng = np.random.default_rng(5)
    zh = make_note_text(rng, 0, 0, language="zh", n_tokens=60)
    en = make_note_text(rng, 0, 0, language="en", n_tokens=60)
    mixed = make_note_text(rng, 0, 0, language="mixed", n_tokens=200)
    cjk = re.compile(r"[\u4e00-\u9fff]")
    assert cjk.search(zh.body) and not cjk.search(en.body)
    assert cjk.search(mixed.body) and re.search(r"[a-z]{3}", mixed.body)


def test_clickbait_titles_use_bait():
    def bait_share(clickbait: float) -> float:
        rng = np.random.default_rng(2)
        titles = [make_note_text(rng, i % 24, 0, language="en", n_tokens=40,
                                 clickbait=clickbait).title for i in range(200)]
        return np.mean([("!!!" in t) or any(b in t for b in V.CLICKBAIT_EN)
                        or any(e in t for e in V.EMOJIS) or bool(re.match(r"\d", t))
                        for t in titles])
    assert bait_share(0.0) == 0.0
    assert bait_share(1.0) > 0.95


def test_harmful_text_is_learnable_but_not_a_keyword():
    safe = _notes(21, 1000, None)
    harmful = {h: _notes(22 + k, 250, h) for k, h in enumerate(HARM_TYPES)}
    safe_tok = [_tokens(n.title + " " + n.body) for n in safe]
    for h, notes in harmful.items():
        toks = [_tokens(n.title + " " + n.body) for n in notes]
        counts: dict[str, int] = {}
        for ts in toks:
            for w in ts:
                counts[w] = counts.get(w, 0) + 1
        top = max(counts, key=counts.get)
        assert counts[top] / len(notes) <= 0.9, (h, top)
        # the best single-keyword filter: recall minus false-positive rate stays low
        fpr = {w: sum(w in ts for ts in safe_tok) / len(safe) for w in counts}
        youden = max(counts[w] / len(notes) - fpr[w] for w in counts)
        assert youden < 0.65, h
        # ~30% of harmful notes carry none of the type's obvious trigger words
        clean = np.mean([not has_trigger(n.title + " " + n.body, V.HARM[h].triggers)
                         for n in notes])
        assert 0.2 <= clean <= 0.5, (h, clean)
    # a keyword filter also fires on safe notes (finance, health, games, comedy)
    triggers = tuple(w for lex in V.HARM.values() for w in lex.triggers)
    assert sum(has_trigger(n.body, triggers) for n in safe) >= 20

    docs = [n.title + " " + n.body for n in safe] + [
        n.title + " " + n.body for notes in harmful.values() for n in notes]
    y = np.r_[np.zeros(len(safe)), np.ones(1000)]
    rng = np.random.default_rng(0)
    test = rng.random(len(y)) < 0.3
    vec = CountVectorizer(analyzer=lambda s: sorted(_tokens(s)), binary=True, min_df=2)
    x = vec.fit_transform([d for d, t in zip(docs, test, strict=True) if not t])
    clf = LogisticRegression(C=1.0, max_iter=500).fit(x, y[~test])
    auc = roc_auc_score(y[test], clf.predict_proba(vec.transform(
        [d for d, t in zip(docs, test, strict=True) if t]))[:, 1])
    assert auc > 0.85, auc


def test_topic_still_shapes_harmful_text():
    rng = np.random.default_rng(9)
    note = make_note_text(rng, V.TOPIC_NAMES.index("pets"), 0, language="en", n_tokens=150,
                          harm_type="scam")
    pets = V.TOPICS[V.TOPIC_NAMES.index("pets")]
    vocab = set(pets.words_en) | set(pets.sub_words_en[0])
    assert sum(w.strip(".!").lower() in vocab for w in note.body.split()) >= 5


def test_bad_arguments_raise_config_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="topic"):
        make_note_text(rng, 24, 0, language="en", n_tokens=50)
    with pytest.raises(ConfigError, match="subcategory"):
        make_note_text(rng, 0, 9, language="en", n_tokens=50)
    with pytest.raises(ConfigError, match="language"):
        make_note_text(rng, 0, 0, language="fr", n_tokens=50)
    with pytest.raises(ConfigError, match="harm_type"):
        make_note_text(rng, 0, 0, language="en", n_tokens=50, harm_type="spam")
    with pytest.raises(ConfigError, match="n_tokens"):
        make_note_text(rng, 0, 0, language="en", n_tokens=3)
    with pytest.raises(ConfigError, match="language mix"):
        choose_language(rng, (0.5, 0.5, 0.5))


def test_choose_language_follows_the_mix():
    rng = np.random.default_rng(1)
    langs = [choose_language(rng, (0.75, 0.15, 0.10)) for _ in range(4000)]
    shares = [langs.count(x) / len(langs) for x in LANGS]
    assert np.allclose(shares, (0.75, 0.15, 0.10), atol=0.03)
    assert choose_language(rng, (0.0, 1.0, 0.0)) == "zh"


# ----------------------------------------------------------------------------- queries

def test_query_terms_come_from_the_topic():
    rng = np.random.default_rng(4)
    for topic, t in enumerate(V.TOPICS):
        vocab = (set(t.words_en) | set(t.words_zh) | set(sum(t.sub_words_en, ()))
                 | set(sum(t.sub_words_zh, ())) | set(t.brands + t.places + t.products + t.people))
        for sub in range(len(t.subcategories)):
            for lang in LANGS:
                for _ in range(5):
                    query, terms = make_query(rng, topic, sub, language=lang)
                    assert terms and set(terms) <= vocab, (query, terms)
                    assert all(term in query for term in terms)
                    if lang == "zh":
                        assert 1 <= len(query) <= 40
                    else:
                        assert 1 <= len(query.split()) <= 5, query
    a = make_query(np.random.default_rng(8), 3, 1, language="en")
    assert a == make_query(np.random.default_rng(8), 3, 1, language="en")


def test_relevance_label_levels():
    assert relevance_label(1, 2, ["sourdough"], 1, 2, "My Sourdough starter") == 3
    assert relevance_label(1, 2, ["sourdough"], 1, 2, "croissant") == 2
    assert relevance_label(1, 2, ["sourdough"], 1, 0, "sourdough") == 1
    assert relevance_label(1, 2, ["sourdough"], 3, 2, "sourdough") == 0


def test_relevance_labels_vectorised_matches_scalar():
    rng = np.random.default_rng(6)
    qt, qs, nt, ns = (rng.integers(0, k, 500) for k in (3, 2, 3, 2))
    hit = rng.random(500) < 0.5
    got = relevance_labels(qt, qs, nt, ns, hit)
    want = [relevance_label(a, b, ["x"] if h else [], c, d, "x")
            for a, b, c, d, h in zip(qt, qs, nt, ns, hit, strict=True)]
    assert got.dtype == np.int8 and got.tolist() == want


def test_relevance_orders_generated_notes():
    """A query's own subcategory holds its terms far more often than a sibling's."""
    rng = np.random.default_rng(12)
    labels = {0: [], 1: [], 2: []}   # note subcategory -> labels for queries of subcat 0
    for i in range(300):
        topic = i % 24
        _, terms = make_query(rng, topic, 0, language="en")
        for sub in range(3):
            note = make_note_text(rng, topic, sub, language="en", n_tokens=120)
            labels[sub].append(relevance_label(topic, 0, terms, topic, sub,
                                               note.title + " " + note.body))
    assert set(labels[1]) == {1} and set(labels[2]) == {1}
    assert set(labels[0]) <= {2, 3} and np.mean(np.array(labels[0]) == 3) > 0.5
