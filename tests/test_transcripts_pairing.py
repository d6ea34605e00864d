"""Pairing: small talk, merging, who the interviewer is, question/answer pairs."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.transcripts import TranscriptError
from bot.transcripts.pairing import (clean_question, is_question_like, is_small_talk, merge_turns, pair_transcript,
                                     pair_turns, pick_interviewer)
from bot.transcripts.readers import Turn, read_path, read_turns

DATA = Path(__file__).resolve().parent / "data" / "transcripts"


def T(speaker, text, line=1, role=None):
    return Turn(speaker, text, line, role)


def pairs_of(name: str, **kw):
    path = DATA / name
    turns, _ = read_turns(read_path(path), str(path))
    return pair_transcript(turns, name=name, **kw)


@pytest.mark.parametrize("text", [
    "Can you hear me?", "Hi Tom, can you hear me?", "Yes, I can hear you fine.", "Mm-hm.", "OK, great, thanks!",
    "Hi Alexander", "Sorry, one moment.", "Thanks, that's all from me.", "喂，能听到我说话吗？", "能听到，您好。",
    "嗯，好的。", "好的，今天就到这里，谢谢。", "谢谢老师，再见。", "你好，张三丰", "Hello! Ready to start?",
])
def test_small_talk(text):
    assert is_small_talk(text)


@pytest.mark.parametrize("text", [
    "What is dropout?", "How does dropout differ from batch normalization?", "Great. Next: what is overfitting?",
    "好，欠拟合呢？", "讲讲BN", "什么是过拟合？", "It keeps the spatial size unchanged.", "Hi, what is a 1x1 convolution for?",
    "过拟合", "No, the learning rate was too high.", "降维的好处", "不知道", "pass", "不会", "No idea.",
])
def test_not_small_talk(text):
    assert not is_small_talk(text)


def test_clean_question_drops_pleasantries_around_the_question():
    assert clean_question("Great, thanks. Let's begin. How does dropout work?") == "How does dropout work?"
    assert clean_question("好的，那我们开始吧。第一个问题，你会调哪些超参数？") == "第一个问题，你会调哪些超参数？"
    assert clean_question("Mm-hm.") == "Mm-hm."  # nothing left: keep it as is


def test_question_like():
    assert is_question_like("Why?") and is_question_like("Explain the kernel trick.")
    assert is_question_like("说说你对核函数的理解。") and is_question_like("那BN呢")
    assert not is_question_like("I would use class weights.") and not is_question_like("主要是降低方差。")


def test_merge_joins_latin_with_space_cjk_without_and_sentences_with_newline():
    merged = merge_turns([T("A", "Dropout randomly", 1), T("A", "zeroes units.", 2), T("A", "BN normalizes", 3),
                          T("B", "主要是学习率、", 4), T("B", "batch size", 5), T("B", "和epoch", 6)])
    assert [m.text for m in merged] == ["Dropout randomly zeroes units.\nBN normalizes", "主要是学习率、batch size和epoch"]
    assert [m.line for m in merged] == [1, 4]


def test_explicit_interviewer_by_name_or_prefix():
    turns = [T("Sarah Chen", "I think dropout is a regularizer?"), T("Tom Becker", "What is dropout?")]
    assert pick_interviewer(turns, "sarah") == "Sarah Chen"
    assert pick_interviewer(turns, "TOM BECKER") == "Tom Becker"
    with pytest.raises(TranscriptError, match=r"--interviewer 'Bob' is not a speaker.*") as e:
        pick_interviewer(turns, "Bob", name="t.vtt")
    assert "Sarah Chen, Tom Becker" in e.value.hint


def test_interviewer_from_role_labels_beats_heuristics():
    # The candidate asks all the questions here, but the labels say who is who.
    turns = [T("A", "Why?", role="candidate"), T("Q", "Dropout zeroes units.", role="interviewer")]
    assert pick_interviewer(turns) == "Q"


def test_interviewer_by_question_marks_and_question_words():
    turns = [T("Li", "我先自我介绍一下，我做了三年推荐系统。"), T("Wang", "讲讲dropout的原理"),
             T("Li", "dropout在训练时随机置零神经元。"), T("Wang", "那BN呢？"), T("Li", "BN做标准化。")]
    assert pick_interviewer(turns) == "Wang"


def test_corpus_matches_decide_when_question_marks_do_not():
    # Neither side uses question marks or question words: the side whose turns match corpus
    # questions is the interviewer.
    turns = [T("X", "Dropout and batch normalization, the difference."), T("Y", "Dropout zeroes units, BN normalizes."),
             T("X", "Overfitting, causes and fixes."), T("Y", "Too little data, use regularization.")]
    corpus_like = {"Dropout and batch normalization, the difference.", "Overfitting, causes and fixes."}
    assert pick_interviewer(turns, matches=lambda q: q in corpus_like) == "X"
    assert pick_interviewer(turns, matches=lambda q: q not in corpus_like) == "Y"


def test_ties_go_to_the_speaker_with_shorter_turns():
    turns = [T("A", "Overfitting."), T("B", "It is when the model memorises noise and fails on new data.")]
    assert pick_interviewer(turns) == "A"


def test_one_speaker_cannot_be_paired():
    with pytest.raises(TranscriptError, match="only one speaker"):
        pick_interviewer([T("Me", "What is dropout?"), T("Me", "It zeroes units.")])


def test_pairs_join_multi_turn_answers_and_ignore_an_intro():
    turns = [T("Cand", "Hello, I'm Tom and I work on vision models.", 1), T("Int", "What is a 1x1 convolution for?", 2),
             T("Cand", "It mixes channels.", 3), T("Int", "Mm-hm.", 4), T("Cand", "And it keeps the spatial size.", 5),
             T("Int", "What is pooling for?", 6)]
    p = pair_transcript(turns, interviewer="Int")
    assert [(x.question, x.line) for x in p.pairs] == [("What is a 1x1 convolution for?", 2), ("What is pooling for?", 6)]
    assert p.pairs[0].answer == "It mixes channels.\nAnd it keeps the spatial size." and p.pairs[0].answer_line == 3
    assert p.pairs[1].answer == "" and p.pairs[1].answer_line is None  # unanswered: kept, scores 0
    assert p.small_talk == 1


def test_pair_turns_keeps_order():
    pairs = pair_turns([T("I", "Q1?"), T("C", "a1"), T("I", "Q2?"), T("C", "a2"), T("C", "a2b")], "I")
    assert [(p.question, p.answer) for p in pairs] == [("Q1?", "a1"), ("Q2?", "a2 a2b")]


def test_markdown_with_small_talk():
    p = pairs_of("smalltalk.md")
    assert p.interviewer == "Q"
    assert [x.question for x in p.pairs] == [
        "Can you explain bias and variance, and how they relate to overfitting?",
        "How does backpropagation work through a max pooling layer?",
        "What's your favourite programming language and why?",
    ]
    assert "- high variance: low training error, high validation error" in p.pairs[0].answer
    assert p.small_talk == 4  # hear-me-OK, loud-and-clear, one-moment, thanks/bye


def test_zoom_zh_pairs():
    p = pairs_of("zoom_zh.vtt")
    assert p.interviewer == "王老师" and len(p.pairs) == 4
    first = p.pairs[0]
    assert first.question == "第一个问题，你平时训练网络的时候一般会调哪些超参数？"
    # two cues of one answer, split mid-sentence: joined without a stray space
    assert first.answer.startswith("主要是学习率、batch size 和 epoch 数，还有优化器")


def test_teams_multi_turn_answer_across_a_backchannel():
    p = pairs_of("teams_en.vtt")
    assert p.interviewer == "Sarah Chen" and len(p.pairs) == 3
    assert p.pairs[1].answer.endswith("And it keeps the spatial size unchanged.")


def test_chat_log_pairs_use_roles():
    p = pairs_of("chat_roles.json")
    assert p.interviewer == "assistant"
    assert [x.question for x in p.pairs] == ["What are the benefits of dimensionality reduction?",
                                            "Why do convolutional layers work better than fully connected layers on images?"]


def test_only_small_talk_is_a_clear_error():
    turns, _ = read_turns("A: Hi, can you hear me?\nB: Yes!\nA: Great, thanks. Bye!", "hello.txt")
    with pytest.raises(TranscriptError, match="hello.txt: the transcript holds only small talk"):
        pair_transcript(turns, name="hello.txt")


def test_no_questions_is_a_clear_error():
    turns = [T("Int", "Dropout zeroes units."), T("Cand", "BN normalizes.")]
    with pytest.raises(TranscriptError, match="no questions found"):
        pair_transcript(turns, interviewer="Cand", name="x.md")  # the candidate speaks last: nothing to answer


def test_a_dont_know_answer_and_a_terse_question_keep_the_pairs_apart():
    """Seen in a 75-answer chat log: "不知道" was dropped as small talk, and the terse corpus question
    "降维的好处" too, so the next answers merged into the previous pair and were graded against the
    wrong question."""
    turns = [T("面试官", "什么是维度灾难？", 1, "interviewer"), T("候选人", "不知道", 2, "candidate"),
             T("面试官", "降维的好处", 3, "interviewer"), T("候选人", "减少计算量，去除噪声，便于可视化。", 4, "candidate"),
             T("面试官", "什么是 dropout？", 5, "interviewer"), T("候选人", "pass", 6, "candidate")]
    p = pair_transcript(turns)
    assert [(x.question, x.answer) for x in p.pairs] == [
        ("什么是维度灾难？", "不知道"), ("降维的好处", "减少计算量，去除噪声，便于可视化。"), ("什么是 dropout？", "pass")]
