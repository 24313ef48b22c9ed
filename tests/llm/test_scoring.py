"""The SNS-Bench task metrics on hand-computed cases, reference quirks included."""

import pytest

from snsrec.errors import ConfigError
from snsrec.llm.scoring import (
    cut_answer,
    cut_label,
    micro_set_f1,
    normalise,
    read_list,
    score_task,
    split_list,
)


def test_the_answer_parsers():
    assert cut_answer("Answer: Yes. Because it is.") == "Yes"
    assert cut_answer("No\nexplanation") == "No"
    assert cut_answer("yes") == "yes"                      # case is kept: "yes" != "Yes"
    assert cut_label("答案：Food Exploration, really") == "Food Exploration"
    assert cut_label("Fashion Trends") == "Fashion Tr"      # the reference's "end" cut
    assert cut_label("Travel<|im_end|>") == "Travel"
    assert split_list("Answer: a, b ,c\nmore") == ["a", "b", "c"]
    assert split_list("a, , b") == ["a", "", "b"]          # a blank piece survives, empty
    assert read_list("Sure: ['CC mode', 'x'] ok") == ["CC mode", "x"]
    assert read_list('["a"]') == ["a"] and read_list("[]") == []
    assert read_list("['#Topic[Topic]#']") is None         # the inner [Topic] is grabbed
    assert read_list("__import__('os')") is None            # never evaluated
    assert normalise("Fashion | Accessories & the Jewelry. more") == "Fashion Accessories Jewelry"


def test_micro_set_f1_sums_over_items():
    m = micro_set_f1([(["a", "b"], ["a"]), (["c"], ["c", "d"])])
    # TP 2, predicted 3, reference 3
    assert m["precision"] == pytest.approx(200 / 3, rel=1e-4)
    assert m["f1"] == pytest.approx(100 * 4 / 6, rel=1e-4)


def test_accuracy_tasks():
    items = [{"answer": "Yes"}, {"answer": "No"}, {"answer": "Yes"}, {"answer": "No"}]
    got = score_task("Note-Gender", ["Yes.", "Answer: No", "yes", "Yes"], items)
    assert got["score"] == pytest.approx(50.0)
    tax = [{"answer": "Food"}, {"answer": "Trends"}]
    assert score_task("Note-Taxonomy-single", ["Food, I think", "Trends"], tax)["score"] == 50.0


def test_list_tasks_and_chlw_success_ratio():
    items = [{"answer": "a, b"}, {"answer": "c"}]
    got = score_task("Note-NER", ["a, x", "c"], items)
    assert got["f1"] == pytest.approx(100 * 2 * 2 / (3 + 3), rel=1e-4)
    chlw = [{"answer": "['A', 'B']"}, {"answer": "[]"}, {"answer": "['C']"}, {"answer": "[]"}]
    out = ["['A']", "[]", "no idea", "['Z']"]
    got = score_task("Note-CHLW", out, chlw)
    # parsed: (A | A,B), ("" | ""), (Z | "") → TP 2, predicted 3, reference 4; one unparsed
    f1 = 100 * 2 * 2 / (3 + 4)
    assert got["unparsed"] == 1 and got["success_ratio"] == pytest.approx(75.0)
    assert got["f1"] == pytest.approx(f1, rel=1e-4)
    assert got["score"] == pytest.approx(0.75 * f1, rel=1e-4)


def test_chlw_scores_an_empty_list_as_one_empty_word_like_the_reference():
    """SNS-Bench's CHLWEvaluator turns [] (answered or gold) into [""]: a right [] is one true
    positive, a [] against gold words one predicted word that misses; counts summed."""
    empty, words = {"answer": "[]"}, {"answer": "['A', 'B']"}
    right = score_task("Note-CHLW", ["[]"], [empty])
    # TP 1, predicted 1, reference 1 (the reference's 1e-4 in every denominator)
    assert right["f1"] == pytest.approx(100 * 2 * 1 / (1 + 1 + 1e-4), rel=1e-12)
    assert right["score"] == pytest.approx(right["f1"], rel=1e-12)
    wrong = score_task("Note-CHLW", ["[]"], [words])
    # TP 0, predicted 1 (""), reference 2
    assert wrong["f1"] == 0.0 and wrong["precision"] == 0.0 and wrong["success_ratio"] == 100
    both = score_task("Note-CHLW", ["[]", "[]"], [empty, words])
    # micro: TP 1, predicted 2, reference 3 — not the mean of the two items' F1
    assert both["precision"] == pytest.approx(100 * 1 / (2 + 1e-4), rel=1e-12)
    assert both["recall"] == pytest.approx(100 * 1 / (3 + 1e-4), rel=1e-12)
    assert both["score"] == pytest.approx(100 * 2 * 1 / (2 + 3 + 1e-4), rel=1e-12)


def test_taxonomy_multiple_and_querycorr_topic():
    items = [{"answer": "Fashion | Accessories | Jewelry"}, {"answer": "Food | Recipes | Cakes"}]
    got = score_task("Note-Taxonomy-multiple",
                     ["Fashion | Accessories | Jewelry", "Food | Recipes | Bread"], items)
    assert got["score"] == 50.0
    topic = [{"answer": "3"}, {"answer": "-1"}, {"answer": "2"}, {"answer": "0"}]
    got = score_task("Note-QueryCorr-topic", ["Rating: 3", "-1", "none", "1"], topic)
    # level 3 and -1 right (F1 100 each), 0 missed, 1 a false positive, 2 unparsed → 0
    assert got["unparsed"] == 1 and got["success_ratio"] == pytest.approx(75.0)
    assert got["macro_f1"] == pytest.approx(40.0, abs=1e-3)
    assert got["score"] == pytest.approx(30.0, abs=1e-3)


def test_unknown_task_and_length_mismatch():
    with pytest.raises(ConfigError, match="no scorer for task 'Note-Poetry'"):
        score_task("Note-Poetry", [], [])
    with pytest.raises(ConfigError, match="2 outputs for 1 items"):
        score_task("Note-Gender", ["Yes", "No"], [{"answer": "Yes"}])


def test_querygen_similarity_and_anls():
    from snsrec.llm.scoring import anls, levenshtein

    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3
    assert anls("abc", "abc") == 100.0 and anls("", "") == 100.0
    assert anls("kitten", "sitting") == pytest.approx(100 * (1 - 3 / 7))
    items = [{"answer": "best ramen in tokyo"}, {"answer": "how to train a puppy"}]
    exact = score_task("Note-QueryGen", [it["answer"] for it in items], items)
    assert exact["score"] == pytest.approx(100.0, abs=1e-3)
    close = score_task("Note-QueryGen", ["tokyo ramen recommendations", "puppy training tips"],
                       items)
    far = score_task("Note-QueryGen", ["stock market news", "tax filing deadline"], items)
    assert far["similarity"] < close["similarity"] < 100
    # the edit similarity reads the whole output, the embedding only its first line
    chatty = score_task("Note-QueryGen", ["best ramen in tokyo\nbecause...", "how to train a puppy"],
                        items)
    assert chatty["similarity"] == pytest.approx(100.0, abs=1e-3) and chatty["anls"] < 100


def test_mrc_complex_by_hand():
    from snsrec.llm.scoring import _lcs_f1, read_result

    def result(*options):
        import json

        body = json.dumps([{"Option": o, "Reason": "because"} for o in options])
        return f"<rewrite_query>q</rewrite_query>\n<AnswerList>[]</AnswerList>\n<Result>{body}</Result>"

    assert read_result(result("A", "A")) == {"A": "because"} and read_result(result()) == {}
    assert read_result("no tags") is None and read_result("<Result>[1]</Result>") is None
    assert _lcs_f1("北京烤鸭", "烤鸭") == pytest.approx(2 * (2 / 4) * 1 / (2 / 4 + 1))
    assert _lcs_f1("Dragon Byte", "dragon byte") == 1.0        # one token, normalised case
    items = [{"answer": result("Dragon Byte")}, {"answer": result()},
             {"answer": result("Lucky")}, {"answer": result("X", "Y")}]
    preds = [result("dragon byte"), result(), "garbage", result("X", "Z")]
    got = score_task("Note-MRC-complex", preds, items)
    # parsed 3 of 4: tp 2 (items 1, 4), tn 1 → total F1 1; option F1/EM: 1, 1, 0.5
    assert got["unparsed"] == 1 and got["success_ratio"] == pytest.approx(75.0)
    assert got["success_total_f1"] == pytest.approx(75.0)
    assert got["success_option_em"] == pytest.approx(75.0 * 2.5 / 3)
    assert got["score"] == pytest.approx((75 + 2 * 75 * 2.5 / 3) / 3)


def test_mrc_simple_as_the_reference_scores_it():
    items = [{"answer": ["The room holds 50 people."]}, {"answer": []},
             {"answer": ["北京烤鸭很好吃"]}, {"answer": ["x"]}]
    exact = ["['The room holds 50 people.']", "[]", "['北京烤鸭很好吃']", "not a list"]
    got = score_task("Note-MRC-simple", exact, items)
    # parsed 3 of 4 (tp, tn, tp): existence F1 1; both tp pairs identical → ROUGE 1; BLEU-4
    # without smoothing is 0 for the 3-word Chinese answer (no 4-grams), as in the reference
    assert got["unparsed"] == 1 and got["success_ratio"] == pytest.approx(75.0)
    assert got["success_f1"] == pytest.approx(75.0, abs=0.01)
    assert got["success_rouge_l"] == pytest.approx(75.0, abs=0.01)
    assert got["success_bleu"] == pytest.approx(75.0 / 2, abs=0.01)
    wrong = score_task("Note-MRC-simple", ["[]", "['made up']", "[]", "[]"], items)
    assert wrong["success_f1"] == pytest.approx(0.0, abs=1e-3) and wrong["score"] < 1
    partial = score_task("Note-MRC-simple", ["['The room holds people.']"], items[:1])
    assert 0 < partial["success_rouge_1"] < 100
