"""Note and query text of the synthetic SNS world.

Every function is a pure function of ``(rng, args)``: the same Generator state gives the
same text. Nothing here iterates a set or calls ``hash()``.

Token counts (the ``n_tokens`` a caller asks for, see :func:`count_tokens`):

* ``en`` and ``mixed``: whitespace tokens (a Chinese word inside a mixed note is one token);
* ``zh``: two characters make one token, i.e. ``ceil(len(text) / 2)``, since Chinese has no
  spaces and a Chinese word is about two characters long.

A body is built from *segments* dropped between filler sentences: facts (which carry the
entities and the question/answer pairs), harmful sentences, promotional sentences and
legitimate sentences that merely look alarming. Filler is drawn in one vectorised step
from a weighted per-(topic, subcategory, language) pool, then padded to the exact length.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from itertools import accumulate, chain
from typing import NamedTuple

import numpy as np

from snsrec.data.world import vocab as V
from snsrec.errors import ConfigError

__all__ = [
    "LANGUAGES", "NoteText", "choose_language", "count_tokens", "has_trigger", "make_note_text",
    "make_query", "relevance_label", "relevance_labels", "subcat_vocab",
]

LANGUAGES = ("en", "zh", "mixed")
DEFAULT_LANGUAGE_MIX = (0.75, 0.15, 0.10)
SUBTLE_SHARE = 0.3          # harmful notes written without any obvious trigger word
MIN_TOKENS = 16             # below this a fact and a harmful sentence no longer fit


class NoteText(NamedTuple):
    title: str
    body: str
    hashtags: list[str]
    language: str
    entities: list[tuple[str, int, int, str, str]]
    qa: list[tuple[str, str]]
    highlights: list[str]


def count_tokens(text: str, language: str) -> int:
    """Length in the units of ``n_tokens``: words for en/mixed, two characters for zh."""
    return (len(text) + 1) // 2 if language == "zh" else len(text.split())


_WORD_RE = re.compile(r"[a-z0-9']+")


def has_trigger(text: str, triggers: tuple[str, ...]) -> bool:
    """Whether ``text`` holds a trigger: a whole English word, or a Chinese substring."""
    low = text.lower()
    words = set(_WORD_RE.findall(low))
    return any((t in words) if t.isascii() else (t in low) for t in triggers)


def choose_language(rng: np.random.Generator,
                    mix: tuple[float, float, float] = DEFAULT_LANGUAGE_MIX) -> str:
    """Draw "en", "zh" or "mixed" with probabilities ``mix``."""
    if len(mix) != 3 or min(mix) < 0 or abs(sum(mix) - 1.0) > 1e-6:
        raise ConfigError(f"language mix {tuple(mix)} must be three non-negative shares "
                          "(en, zh, mixed) summing to 1, e.g. (0.75, 0.15, 0.10)")
    u = rng.random()
    return "en" if u < mix[0] else ("zh" if u < mix[0] + mix[1] else "mixed")


def _check(topic: int, subcat: int, language: str) -> V.Topic:
    if not 0 <= topic < V.N_TOPICS:
        raise ConfigError(f"topic index {topic} is out of range; use 0..{V.N_TOPICS - 1}")
    t = V.TOPICS[topic]
    if not 0 <= subcat < len(t.subcategories):
        raise ConfigError(f"subcategory index {subcat} is out of range for topic {t.name!r}; "
                          f"use 0..{len(t.subcategories) - 1}")
    if language not in LANGUAGES:
        raise ConfigError(f"language {language!r} is unknown; use one of {LANGUAGES}")
    return t


def subcat_vocab(topic: int, subcat: int, language: str) -> tuple[str, ...]:
    """The subcategory's own words in ``language`` (mixed: English then Chinese)."""
    t = _check(topic, subcat, language)
    if language == "en":
        return t.sub_words_en[subcat]
    if language == "zh":
        return t.sub_words_zh[subcat]
    return t.sub_words_en[subcat] + t.sub_words_zh[subcat]


_Draw = Callable[[], float]


def _draws(rng: np.random.Generator, n: int) -> _Draw:
    """Uniforms handed out one at a time: one Generator call usually serves a whole note.

    More are drawn in batches only when the first ``n`` run out, so what the Generator
    yields depends only on how many were consumed: deterministic. ``chain.__next__`` is a
    C call, several times cheaper than a Python method per draw.
    """
    def more() -> Iterator[float]:
        while True:
            yield from rng.random(32).tolist()

    return chain(rng.random(n).tolist(), more()).__next__


def _pick(d: _Draw, seq: Sequence[str]) -> str:
    return seq[int(d() * len(seq))]


# ----------------------------------------------------------------------------- filler pools

class _Pool(NamedTuple):
    items: np.ndarray   # object array; weights realised by repetition
    cost: np.ndarray    # int64: words (en/mixed) or characters (zh) per item


_POOL_SIZE = 1200


def _cost(item: str, language: str) -> int:
    return len(item) if language == "zh" else item.count(" ") + 1


def _weighted_pool(groups: list[tuple[float, tuple[str, ...]]], language: str) -> _Pool:
    items: list[str] = []
    for weight, words in groups:
        items.extend(words * max(1, round(weight * _POOL_SIZE / len(words))))
    arr = np.array(items, dtype=object)
    return _Pool(arr, np.array([_cost(s, language) for s in items], dtype=np.int64))


def _others(subs: tuple[tuple[str, ...], ...], k: int) -> tuple[str, ...]:
    return tuple(w for j, ws in enumerate(subs) if j != k for w in ws)


@cache
def _pool(topic: int, subcat: int, language: str) -> _Pool:
    """Filler of one (topic, subcategory, language): the subcategory's words dominate,
    its sibling subcategories leak a little so the subcategory label stays noisy."""
    t = V.TOPICS[topic]
    en = [(0.22, t.sub_words_en[subcat]), (0.20, t.words_en),
          (0.05, _others(t.sub_words_en, subcat)), (0.33, V.FUNCTION_EN),
          (0.08, V.EMOTIVE_EN), (0.12, V.GENERIC_EN)]
    if language == "en":
        return _weighted_pool(en, language)
    zh = [(0.22, t.sub_words_zh[subcat]), (0.22, t.words_zh),
          (0.05, _others(t.sub_words_zh, subcat)), (0.33, V.FUNCTION_ZH),
          (0.08, V.EMOTIVE_ZH), (0.10, V.GENERIC_ZH)]
    if language == "zh":
        return _weighted_pool(zh, language)
    mixed = [(w * 0.8, g) for w, g in en] + [(0.08, t.sub_words_zh[subcat]),
                                             (0.07, t.words_zh), (0.05, V.EMOTIVE_ZH)]
    return _weighted_pool(mixed, language)


@cache
def _secondary_pool(topic: int, language: str) -> _Pool:
    """Content words of a second topic, sprinkled into a note's filler."""
    t = V.TOPICS[topic]
    en = t.words_en + tuple(w for ws in t.sub_words_en for w in ws)
    zh = t.words_zh + tuple(w for ws in t.sub_words_zh for w in ws)
    words = {"en": en, "zh": zh, "mixed": en + zh}[language]
    return _weighted_pool([(1.0, words)], language)


_PAD_EN = tuple(w for w in V.FUNCTION_EN + V.GENERIC_EN if " " not in w)
_PAD_ZH2 = tuple(w for w in V.FUNCTION_ZH + V.GENERIC_ZH if len(w) == 2)
_PAD_ZH1 = ("呀", "啦", "哦", "呢", "哈")
_SECONDARY_SHARE = 0.2


@cache
def _ends(sent_len: int) -> np.ndarray:
    return ((np.arange(2 * 2048) + 1) % sent_len == 0).astype(np.int64)


def _sentence_ends(sent_len: int, m: int) -> np.ndarray:
    """1 where item j ends a sentence of ``sent_len`` items (j < m)."""
    ends = _ends(sent_len)
    return ends[:m] if m <= len(ends) else (np.arange(m) + 1) % sent_len == 0


# ----------------------------------------------------------------------------- templates

# A template is whitespace-separated pieces; "<SLOT>" pieces are filled per note. zh pieces
# are joined without spaces, so there the split only marks where the slots are.
_LABEL = {"PLACE": "PLACE", "CITY": "PLACE", "BRAND": "BRAND", "PRODUCT": "PRODUCT",
          "PERSON": "PERSON"}
_PRICES = ("29", "39", "59", "88", "99", "128", "168", "199", "299", "399")
_MINUTES = ("10", "15", "20", "30", "40", "45", "60", "90")

# A fact: sentence, question, answer. Every fact names an entity, and its answer is a
# substring of the filled sentence.
_FACTS = {
    "en": (
        ("We went to <PLACE> in <CITY> last weekend", "Where did the author go in <CITY>?",
         "<PLACE>"),
        ("The <PRODUCT> from <BRAND> cost <PRICE> yuan", "How much did the <PRODUCT> cost?",
         "<PRICE> yuan"),
        ("Big thanks to <PERSON> for the <SUB> tips", "Who gave the author the tips?",
         "<PERSON>"),
        ("My go-to brand for <SUB> is <BRAND>", "Which brand does the author use for <SUB>?",
         "<BRAND>"),
        ("It took about <MIN> minutes to get to <PLACE>",
         "How long did it take to get to <PLACE>?", "<MIN> minutes"),
        ("The best part was the <SUB> at <PLACE>", "What was the best part?", "the <SUB>"),
    ),
    "zh": (
        ("我们去了 <CITY> 的 <PLACE>", "作者在<CITY>去了哪里？", "<PLACE>"),
        ("<BRAND> 家的 <PRODUCT> 花了 <PRICE> 元", "<PRODUCT>花了多少钱？", "<PRICE>元"),
        ("感谢 <PERSON> 分享的 <SUB> 技巧", "是谁分享了技巧？", "<PERSON>"),
        ("<SUB> 我一直用 <BRAND>", "作者的<SUB>一直用哪个品牌？", "<BRAND>"),
        ("去 <PLACE> 大概 <MIN> 分钟", "去<PLACE>要多久？", "<MIN>分钟"),
        ("最喜欢的是 <PLACE> 的 <SUB>", "作者最喜欢什么？", "<SUB>"),
    ),
}
# Title templates; the ones without <SUB> name an entity, so a title always has a key term.
_TITLES = {
    "en": ("my <SUB> <TOP> diary", "<SUB> at <PLACE>", "honest review of <PRODUCT> for <SUB>",
           "<BRAND> <SUB> haul", "what <PERSON> taught me about <SUB>",
           "weekend <SUB> in <CITY>", "<SUB> and <TOP> notes", "finally tried <SUB>",
           "<SUB> guide for beginners", "everything about <SUB> and <TOP>"),
    "zh": ("<CITY> <SUB> 攻略", "我的 <SUB> 日记", "<PRODUCT> 测评", "<BRAND> <SUB> 分享",
           "跟着 <PERSON> 学 <SUB>", "<PLACE> <SUB> 打卡", "<SUB> 和 <TOP> 的日常",
           "新手 <SUB> 指南"),
}
_AD_TITLES = {"en": ("new <PRODUCT> from <BRAND> for <SUB>", "<BRAND> <SUB> must-haves"),
              "zh": ("<BRAND> 新品 <SUB>", "<BRAND> <SUB> 必备")}
_AD_SEG = {"en": "Try the <PRODUCT> by <BRAND> -", "zh": "<BRAND> 的 <PRODUCT>"}
_LISTICLE = {"en": ("7 tips:", "10 secrets:", "3 reasons:", "5 mistakes:"),
             "zh": ("7个技巧：", "10个秘密：", "3个理由：", "5个误区：")}
_TITLE_MIN, _TITLE_MAX = 4, 14
_SEP = {"en": " ", "zh": ""}

_Tpl = tuple[tuple[bool, str], ...]   # (is_slot, slot name or literal)


def _compile(template: str) -> _Tpl:
    return tuple((p[0] == "<" and p[-1] == ">", p.strip("<>") if p[0] == "<" else p)
                 for p in template.split())


def _to_format(text: str) -> str:
    """"<SLOT>" -> "{SLOT}" so a question or answer fills with one ``format_map``."""
    return re.sub(r"<(\w+)>", r"{\1}", text)


_FACTS_C = {k: tuple((_compile(s), _to_format(q), _to_format(a)) for s, q, a in v)
            for k, v in _FACTS.items()}
_TITLES_C = {k: tuple(_compile(s) for s in v) for k, v in _TITLES.items()}
_AD_TITLES_C = {k: tuple(_compile(s) for s in v) for k, v in _AD_TITLES.items()}
_AD_SEG_C = {k: _compile(v) for k, v in _AD_SEG.items()}
_FALLBACK_TITLE = {"en": _compile("finally tried <SUB>"), "zh": _compile("我的 <SUB> 日记")}


def _render(tpl: _Tpl, fills: dict[str, str], sep: str) -> tuple[str, list[tuple[int, str, str]]]:
    """Fill a template: its text and the entities in it as (offset, label, text)."""
    out: list[str] = []
    ents = []
    pos = -len(sep)
    for is_slot, v in tpl:
        s = fills[v] if is_slot else v
        pos += len(sep)
        if is_slot and v in _LABEL:
            ents.append((pos, _LABEL[v], s))
        out.append(s)
        pos += len(s)
    return sep.join(out), ents


class _Seg(NamedTuple):
    text: str
    ents: list[tuple[int, str, str]]   # (offset in text, label, entity text)
    cost: int


def _seg(text: str, ents: list, lang: str) -> _Seg:
    return _Seg(text, ents, len(text) if lang == "zh" else text.count(" ") + 1)


# ----------------------------------------------------------------------------- harmful text

class _HarmTables(NamedTuple):
    templates: tuple[tuple[str | int, ...], ...]   # literal str or slot index
    titles: tuple[tuple[str | int, ...], ...]
    slots: tuple[tuple[str, ...], ...]              # every phrase
    subtle: tuple[tuple[str, ...], ...]             # phrases without a trigger
    obvious: tuple[tuple[str, ...], ...]            # phrases with one (else every phrase)
    loud: tuple[tuple[str | int, ...], ...]         # templates with an obvious-capable slot


_SLOT_RE = re.compile(r"\{(\w+)\}")


def _parse(templates: tuple[tuple[str, ...], ...], names: list[str],
           lang: str) -> tuple[tuple[str | int, ...], ...]:
    out = []
    for pieces in templates:
        text = "".join(pieces) if lang == "zh" else re.sub(r" ([,.?!:])", r"\1", " ".join(pieces))
        parts = _SLOT_RE.split(text)   # literal, slot, literal, slot, ...
        out.append(tuple(p if i % 2 == 0 else names.index(p) for i, p in enumerate(parts)))
    return tuple(out)


@cache
def _harm_tables(harm_type: str, language: str) -> _HarmTables:
    lex = V.HARM[harm_type]
    lang = "zh" if language == "zh" else "en"
    names = [k for k, _ in lex.slots_en]
    zh_slots = dict(lex.slots_zh)
    if language == "zh":
        slots = tuple(zh_slots[k] for k in names)
    elif language == "mixed":   # English sentences with Chinese phrases mixed into the slots
        slots = tuple(v + zh_slots[k] for k, v in lex.slots_en)
    else:
        slots = tuple(v for _, v in lex.slots_en)
    subtle = tuple(tuple(p for p in s if not has_trigger(p, lex.triggers)) for s in slots)
    loud_slots = tuple(tuple(p for p in s if has_trigger(p, lex.triggers)) for s in slots)
    obvious = tuple(o or s for o, s in zip(loud_slots, slots, strict=True))
    tpl = _parse(lex.templates_zh if lang == "zh" else lex.templates_en, names, lang)
    ttl = _parse(lex.titles_zh if lang == "zh" else lex.titles_en, names, lang)
    loud = tuple(x for x in tpl if any(isinstance(p, int) and loud_slots[p] for p in x))
    loud = loud or tpl
    return _HarmTables(tpl, ttl, slots, subtle, obvious, loud)


def _harm_text(d: _Draw, template: tuple[str | int, ...], slots: tuple[tuple[str, ...], ...],
               ) -> str:
    return "".join(p if isinstance(p, str) else _pick(d, slots[p]) for p in template)


# ----------------------------------------------------------------------------- titles

def _title(d: _Draw, lang: str, fills: dict[str, str], harm: _HarmTables | None,
           harm_slots: tuple[tuple[str, ...], ...], is_ad: bool, clickbait: float,
           ) -> tuple[str, list[tuple[int, str, str]], list[str]]:
    """Title text, its entities as (offset, label, text) and the key terms it used."""
    tl = "zh" if lang == "zh" else "en"
    sep = _SEP[tl]
    if harm is not None and d() < 0.6:
        core = _harm_text(d, _pick(d, harm.titles), harm_slots)
        ents: list[tuple[int, str, str]] = []
        keys = [core]
    else:
        tpl = _pick(d, _AD_TITLES_C[tl] if is_ad and d() < 0.5 else _TITLES_C[tl])
        core, ents = _render(tpl, fills, sep)
        keys = [fills[v] for is_slot, v in tpl if is_slot and v in ("SUB", "TOP")]
        keys += [e[2] for e in ents]
    # Optional parts, dropped in this order while the title is too long.
    bait = _pick(d, V.CLICKBAIT_ZH if tl == "zh" else V.CLICKBAIT_EN) if d() < clickbait else ""
    listicle = _pick(d, _LISTICLE[tl]) if d() < clickbait else ""
    emoji = "".join(_pick(d, V.EMOJIS) for _ in range(1 + int(d() * 3))) if d() < clickbait else ""
    bang = ("！！！" if tl == "zh" else "!!!") if d() < clickbait else ""
    tail = _pick(d, V.EMOTIVE_ZH) if lang == "mixed" or (tl == "zh" and d() < 0.5) else ""
    if bait:
        bait += "！" if tl == "zh" else ":"
    sep_out = "" if lang == "zh" else " "
    while True:
        head = sep_out.join(p for p in (bait, listicle) if p)
        title = sep_out.join(p for p in (head, core + bang, tail, emoji) if p)
        n = count_tokens(title, lang)
        if n > _TITLE_MAX and not (bait or listicle or emoji or tail):   # long gazetteer name
            core, ents = _render(_FALLBACK_TITLE[tl], fills, sep)
            keys = [fills["SUB"]]
            continue
        if n > _TITLE_MAX:
            if bait:
                bait = ""
            elif listicle:
                listicle = ""
            elif emoji:
                emoji = ""
            else:
                tail = ""
        elif n < _TITLE_MIN:
            core += sep_out + _pick(d, V.EMOTIVE_ZH if lang == "zh" else V.EMOTIVE_EN)
        else:
            break
    shift = len(head) + (len(sep_out) if head else 0)
    return title, [(shift + o, lab, txt) for o, lab, txt in ents], keys


# ----------------------------------------------------------------------------- body

def _filler(d: _Draw, rng: np.random.Generator, topic: int, subcat: int, lang: str,
            budget: int, secondary: int | None) -> list[str]:
    """Filler sentences (strings, punctuated) whose total cost is exactly ``budget``."""
    pool = _pool(topic, subcat, lang)
    zh = lang == "zh"
    sent_len = 5 + int(d() * 5) if zh else 6 + int(d() * 7)
    m = max(budget, 1)
    u = rng.random((1 if secondary is None else 2, m))
    idx = (u[0] * len(pool.items)).astype(np.intp)
    items, cost = pool.items[idx], pool.cost[idx]
    if secondary is not None:
        sec = _secondary_pool(secondary, lang)
        mask = u[1] < _SECONDARY_SHARE
        sidx = (u[1][mask] * (len(sec.items) / _SECONDARY_SHARE)).astype(np.intp)
        items[mask], cost[mask] = sec.items[sidx], sec.cost[sidx]
    if zh:  # each sentence end adds one punctuation character
        cost = cost + _sentence_ends(sent_len, m)
    cs = np.cumsum(cost)
    k = int(np.searchsorted(cs, budget - (1 if zh else 0), side="right"))
    words = items[:k].tolist()
    rem = budget - (int(cs[k - 1]) if k else 0)
    if zh:  # pad as a suffix of the last word: a new word could add a sentence end
        rem -= 1 if k % sent_len else 0       # the final "。" unless one already ends it
        pad = "".join(_pick(d, _PAD_ZH2) for _ in range(rem // 2)) + _pick(d, _PAD_ZH1) * (rem % 2)
        if words:
            words[-1] += pad
        else:
            words = [pad]
    else:
        words += [_pick(d, _PAD_EN) for _ in range(rem)]
    starts = range(0, len(words), sent_len)
    # An exclamation for ~15% of sentences, read off the already drawn uniforms' low digits.
    bangs = ((u[0][: len(starts)] * 1000.0) % 1.0 < 0.15).tolist()
    if zh:
        return ["".join(words[i:i + sent_len]) + ("！" if b else "。")
                for i, b in zip(starts, bangs, strict=True)]
    sents = [" ".join(words[i:i + sent_len]) for i in starts]
    return [s[:1].upper() + s[1:] + ("!" if b else ".") for s, b in zip(sents, bangs, strict=True)]


def _hashtags(d: _Draw, t: V.Topic, subcat: int, secondary: int | None, harm_type: str | None,
              is_ad: bool, city: str) -> list[str]:
    n = 1 + min(5, int(d() * d() * 7 + d() * 2))   # mostly 2-4, sometimes 1 or 6
    i = int(d() * len(t.hashtags))
    j = (i + 1 + int(d() * (len(t.hashtags) - 1))) % len(t.hashtags)
    cands = [t.hashtags[i]]
    if harm_type is not None:
        cands.append(_pick(d, V.HARM[harm_type].hashtags))
    if is_ad and d() < 0.5:
        cands.append("sponsored" if d() < 0.5 else "品牌合作")
    cands += [t.subcategories[subcat].replace("_", ""), t.hashtags[j]]
    if secondary is not None:
        cands.append(_pick(d, V.TOPICS[secondary].hashtags))
    cands.append(city.lower().replace("'", ""))
    return list(dict.fromkeys(cands))[:n]   # dicts keep insertion order: deterministic


def make_note_text(rng: np.random.Generator, topic: int, subcat: int, *, language: str,
                   n_tokens: int, harm_type: str | None = None, clickbait: float = 0.0,
                   secondary_topic: int | None = None, is_ad: bool = False) -> NoteText:
    """One note's title, body, hashtags and language-task ground truth.

    The body has exactly ``n_tokens`` tokens (see :func:`count_tokens`). A harmful note
    keeps >= 20% topic filler plus its facts, so harm is not separable by topic, and
    ``SUBTLE_SHARE`` of harmful notes use no trigger word of their type anywhere.
    """
    t = _check(topic, subcat, language)
    if harm_type is not None and harm_type not in V.HARM:
        raise ConfigError(f"harm_type {harm_type!r} is unknown; use one of {V.HARM_TYPES} "
                          "or None")
    if n_tokens < MIN_TOKENS:
        raise ConfigError(f"n_tokens={n_tokens} is too short for a note; use >= {MIN_TOKENS}")
    if secondary_topic is not None and not 0 <= secondary_topic < V.N_TOPICS:
        raise ConfigError(f"secondary_topic {secondary_topic} is out of range; "
                          f"use 0..{V.N_TOPICS - 1} or None")
    d = _draws(rng, 64)
    lang = language
    tl = "zh" if lang == "zh" else "en"
    sep = _SEP[tl]
    zh_words = lang == "zh"
    fills = {"SUB": _pick(d, t.sub_words_zh[subcat] if zh_words else t.sub_words_en[subcat]),
             "TOP": _pick(d, t.words_zh if zh_words else t.words_en),
             "BRAND": _pick(d, t.brands), "PLACE": _pick(d, t.places), "PRODUCT": _pick(d, t.products),
             "PERSON": _pick(d, t.people), "CITY": _pick(d, V.CITIES), "PRICE": _pick(d, _PRICES),
             "MIN": _pick(d, _MINUTES)}
    harm = _harm_tables(harm_type, lang) if harm_type is not None else None
    harm_slots: tuple[tuple[str, ...], ...] = ()
    if harm is not None:
        harm_slots = harm.subtle if d() < SUBTLE_SHARE else harm.slots
    title, title_ents, keys = _title(d, lang, fills, harm, harm_slots, is_ad, clickbait)

    # Segments in priority order, each only if at least 20% of the body stays filler.
    target = 2 * n_tokens if zh_words else n_tokens
    budget = target - max(3, target // 5)
    end = "。" if tl == "zh" else "."
    segs: list[_Seg] = []
    qa: list[tuple[str, str]] = []
    used = 0

    def add(seg: _Seg) -> bool:
        nonlocal used
        if used + seg.cost > budget:
            return False
        segs.append(seg)
        used += seg.cost
        return True

    facts = _FACTS_C[tl]
    n_facts, f0 = 1 + int(d() * 3), int(d() * len(facts))

    def add_fact(i: int) -> None:
        tpl, q, a = facts[(f0 + i) % len(facts)]
        text, ents = _render(tpl, fills, sep)
        if add(_seg(text + end, ents, lang)):
            qa.append((q.format_map(fills), a.format_map(fills)))

    add_fact(0)   # always fits: the budget is >= 12 tokens and a fact is shorter
    if harm is not None:
        # Unless the note is subtle, its first harmful sentence is phrased obviously, so
        # about SUBTLE_SHARE of harmful notes (not more) go without a trigger word.
        loud = harm_slots is harm.slots
        fails = 0
        share = 0.1 + 0.35 * d()   # some notes are only lightly harmful: hard cases
        while (loud or used < share * target) and fails < 3:
            s = _harm_text(d, _pick(d, harm.loud if loud else harm.templates),
                           harm.obvious if loud else harm_slots)
            s = s if tl == "zh" else s[:1].upper() + s[1:]
            if add(_seg(s + ("!" if tl == "en" and d() < 0.3 else end), [], lang)):
                loud = False
            else:
                fails += 1
    for i in range(1, n_facts):
        add_fact(i)
    if is_ad:
        text, ents = _render(_AD_SEG_C[tl], fills, sep)
        add(_seg(text + sep + _pick(d, V.AD_ZH if tl == "zh" else V.AD_EN) + end, ents, lang))
    legit = V.LEGIT.get(t.name)
    if harm is None and legit is not None and d() < 0.5:
        s = _pick(d, legit[1] if tl == "zh" else legit[0])
        add(_seg(s[:1].upper() + s[1:] + end, [], lang))

    # Filler sentences, with each segment dropped in at a drawn sentence boundary.
    chunks = _filler(d, rng, topic, subcat, lang, target - used, secondary_topic)
    order = sorted((int(d() * (len(chunks) + 1)), i) for i in range(len(segs)))
    for at, i in reversed(order):   # inserting back to front keeps earlier indices valid
        chunks.insert(at, segs[i].text)
    body = sep.join(chunks)
    cum = list(accumulate(map(len, chunks), initial=0))
    entities = [("title", o, o + len(txt), lab, txt) for o, lab, txt in title_ents]
    for rank, (at, i) in enumerate(order):
        c = at + rank
        base = cum[c] + c * len(sep)
        entities.extend(("body", base + o, base + o + len(txt), lab, txt)
                        for o, lab, txt in segs[i].ents)

    terms = keys + [e[4] for e in entities if e[0] == "body"]
    highlights = list(dict.fromkeys(terms))[:2 + int(d() * 4)]
    # A fact entity in the title only (harm title + fact crowded out) cannot happen: the
    # first fact always fits, so there are always >= 2 distinct terms.
    tags = _hashtags(d, t, subcat, secondary_topic, harm_type, is_ad, fills["CITY"])
    return NoteText(title, body, tags, lang, entities, qa, highlights)


# ----------------------------------------------------------------------------- queries

_QUERY_FORMS = {
    "en": ("<SUB>", "<SUB> <TOP>", "best <SUB> in <CITY>", "<SUB> tips", "<PRODUCT> review",
           "<BRAND> <SUB>", "<PLACE>", "<SUB> <PRODUCT>", "<PERSON> <SUB>", "how to <SUB>"),
    "zh": ("<SUB>", "<SUB> <TOP>", "<CITY> <SUB> 推荐", "<SUB> 攻略", "<PRODUCT> 测评",
           "<BRAND> <SUB>", "<PLACE>", "<SUB> 教程"),
    "mixed": ("<SUB> <ZH>", "<ZH> <TOP>", "<SUB> 推荐", "<PRODUCT> 测评", "<BRAND> <ZH>"),
}
_QUERY_FORMS_C = {k: tuple(_compile(s) for s in v) for k, v in _QUERY_FORMS.items()}
_MAX_QUERY_TOKENS = 5
_KEY_SLOTS = ("SUB", "TOP", "ZH", "BRAND", "PLACE", "PRODUCT", "PERSON")   # not CITY


def make_query(rng: np.random.Generator, topic: int, subcat: int, *,
               language: str) -> tuple[str, list[str]]:
    """A 1-5 token search query for (topic, subcategory) and the topic terms it used.

    en/mixed queries count whitespace tokens; zh queries are 1-5 words joined without
    spaces. ``key_terms`` exclude the city and template words ("best", "攻略"), which say
    nothing about the topic.
    """
    t = _check(topic, subcat, language)
    d = _draws(rng, 16)
    zh_words = language == "zh"
    fills = {"SUB": _pick(d, t.sub_words_zh[subcat] if zh_words else t.sub_words_en[subcat]),
             "TOP": _pick(d, t.words_zh if zh_words else t.words_en),
             "ZH": _pick(d, t.sub_words_zh[subcat]), "BRAND": _pick(d, t.brands),
             "PLACE": _pick(d, t.places), "PRODUCT": _pick(d, t.products),
             "PERSON": _pick(d, t.people), "CITY": _pick(d, V.CITIES)}
    forms = _QUERY_FORMS_C[language]
    tpl = _pick(d, forms)
    sep = "" if zh_words else " "
    query, _ = _render(tpl, fills, sep)
    if not zh_words and len(query.split()) > _MAX_QUERY_TOKENS:
        tpl = forms[0]   # long gazetteer names: fall back to the bare subcategory word
        query, _ = _render(tpl, fills, sep)
    keys = [fills[v] for is_slot, v in tpl if is_slot and v in _KEY_SLOTS]
    return query, list(dict.fromkeys(keys))


def relevance_label(query_topic: int, query_subcat: int, query_terms: list[str],
                    note_topic: int, note_subcat: int, note_text: str) -> int:
    """4-level relevance: 3 same subcategory and a query term in the note (case-insensitive),
    2 same subcategory, 1 same topic, 0 otherwise."""
    if query_topic != note_topic:
        return 0
    if query_subcat != note_subcat:
        return 1
    low = note_text.lower()
    return 3 if any(term.lower() in low for term in query_terms) else 2


def relevance_labels(query_topic: np.ndarray, query_subcat: np.ndarray, note_topic: np.ndarray,
                     note_subcat: np.ndarray, term_hit: np.ndarray) -> np.ndarray:
    """Vectorised :func:`relevance_label`; ``term_hit`` says whether a query term is in the
    note. Returns int8 labels in 0..3."""
    same_topic = np.asarray(query_topic) == np.asarray(note_topic)
    same_sub = same_topic & (np.asarray(query_subcat) == np.asarray(note_subcat))
    return (same_topic.astype(np.int8) + same_sub + (same_sub & np.asarray(term_hit, bool))
            ).astype(np.int8)
