"""The prompt of each SNS task: an instruction (system turn) and the item's fields (user turn).

The wording follows what the SNS-Bench evaluation asks of a model for each task
(in our words): pick one label, pick every matching tag, extract entities,
answer with spans as a list, judge relevance on the -1…3 scale, write one search
query. ``render`` puts the turns through the tokenizer's chat template, or — for a
tokenizer without one — joins them as plain text (``fallback`` says so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from snsrec.errors import DataError

DIRECT = " Output the answer directly after 'Answer:', nothing else."

# task → (system instruction, user template over the item's fields, max new tokens)
PROMPTS: dict[str, tuple[str, Callable[[dict[str, Any]], str], int]] = {
    "Note-Taxonomy-single": (
        "Given a social-media note and a list of candidate categories, choose the one category "
        "that fits the note best." + DIRECT,
        lambda it: f"Input: {it['content']}\nCandidate categories: {it['candidates']}\nAnswer: ",
        24),
    "Note-Taxonomy-multiple": (
        "Given a social-media note and candidate primary, secondary and tertiary categories, "
        "choose the best category at each level, written as: Primary | Secondary | Tertiary."
        + DIRECT,
        lambda it: (f"Input: {it['content']}\nCandidate primary categories: "
                    f"{it['candidates_primary']}\nCandidate secondary categories: "
                    f"{it['candidates_secondary']}\nCandidate tertiary categories: "
                    f"{it['candidates_tertiary']}\nAnswer: "),
        48),
    "Note-Hashtag-single": (
        "Given a social-media note and a list of candidate topic tags, choose the one tag most "
        "relevant to the note." + DIRECT,
        lambda it: f"Input: \n{it['content']}\nCandidate Topic Tags: \n{it['candidates']}\n"
                   "Answer: ",
        24),
    "Note-Hashtag-multiple": (
        "Given a social-media note and a list of candidate topic tags, choose every tag that "
        "matches the note, separated by commas." + DIRECT,
        lambda it: f"Input: \n{it['content']}\nCandidate Topic Tags: \n{it['candidates']}\n"
                   "Answer: ",
        64),
    "Note-NER": (
        "Extract the entities the question asks for from the passage, exactly as they are "
        "written there, separated by commas." + DIRECT,
        lambda it: f"Passage:{it['content']}\nQuestion:{it['question']}\nAnswer:",
        64),
    "Note-MRC-simple": (
        "You are given a note (title and content) and a user's question. If the note answers "
        "the question, copy the sentences that answer it from the note, as a list of strings; "
        "if it does not, output an empty list []. Output only the list.",
        lambda it: f"Here is the note title and content:\n\n{it['content']}\n\n\nUser's "
                   f"question:\n{it['query']}\nOutput:\n",
        256),
    "Note-MRC-complex": (
        "You are given a search query, an answer type (Level) and a document. Rewrite the query "
        "for that answer type, judge whether the document is relevant to it, and list every "
        "answer of that type in the document with the sentence that supports it. Write exactly "
        "four tagged parts: <rewrite_query>the query</rewrite_query>, <relevance_analysis>your "
        "judgement</relevance_analysis>, <AnswerList>[\"answer\", ...]</AnswerList>, "
        "<Result>[{\"Option\": \"answer\", \"Reason\": \"sentence\"}, ...]</Result> "
        "(empty lists when there is none).",
        lambda it: it["content"],
        192),
    "Note-QueryCorr-explain": (
        "Below are a question and a document. Can the document answer the question? Reply "
        "Yes or No only.",
        lambda it: f"Question: \n{it['sentence1']}\nDocument: \n{it['sentence2']}\nAnswer: ",
        8),
    "Note-QueryCorr-topic": (
        "Rate how relevant a note is to a search query: 3 it fully meets the main need, 2 it "
        "partly does, 1 it barely mentions it, 0 it shares words but not the need, -1 it has "
        "nothing to do with it.",
        lambda it: f"The Query and note you received are:\n{it['content']}\nPlease output the "
                   "rating level, choosing from -1, 0, 1, 2, 3. Output only the number.\n\n",
        8),
    "Note-QueryGen": (
        "You are a user of a social-media platform. Write one new search query about the core "
        "entities of the note, on a single line, and nothing else.",
        lambda it: f"Please generate a search term for the following note: \nInput: \n"
                   f"{it['content']}\nSearch term:\n",
        32),
    "Note-CHLW": (
        "Choose the words of a comment worth highlighting as search links: specific entities "
        "or topics people would search for. Answer with a Python list.",
        lambda it: it["content"],
        48),
    "Note-Gender": (
        "Does the following note appeal mainly to one gender (women or men)? Reply Yes or No "
        "only.",
        lambda it: f"Note Content:\n{it['content']}\nAnswer:",
        8),
    "Note-Moderation": (
        "Is the following note harmful? Reply with its harm type from the candidates, or "
        "'none' if it is not harmful." + DIRECT,
        lambda it: f"Input: \n{it['content']}\nCandidates: {it['candidates']}\nAnswer: ",
        8),
}


def messages(task: str, item: dict[str, Any], where: str = "") -> list[dict[str, str]]:
    """The chat turns of ``item``; a missing field is a DataError naming ``where``."""
    system, user, _ = PROMPTS[task]
    try:
        return [{"role": "system", "content": system}, {"role": "user", "content": user(item)}]
    except KeyError as e:
        raise DataError(f"{where}: no field {e} (task {task} needs it)") from None


def render(tokenizer: Any, turns: list[dict[str, str]]) -> tuple[str, bool]:
    """(the prompt text, whether the plain-text fallback was used)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(turns, tokenize=False,
                                             add_generation_prompt=True), False
    return "\n\n".join(t["content"] for t in turns) + "\n", True


def render_items(tokenizer: Any, task: str, items: list[dict[str, Any]], where: str
                 ) -> tuple[list[str], bool]:
    """The prompts of ``task``'s ``items`` (errors name ``where`` and the item's index), and
    whether the plain-text fallback was used."""
    texts, fallback = [], False
    for i, it in enumerate(items):
        text, fb = render(tokenizer, messages(task, it, f"{where}: item {i}"))
        texts.append(text)
        fallback |= fb
    return texts, fallback


def max_new_tokens(task: str) -> int:
    return PROMPTS[task][2]
