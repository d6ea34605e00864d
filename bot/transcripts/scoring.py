"""Score a practice transcript: read -> pair -> match each question to the corpus -> grade each answer.

    report = score_file(Path("practice.vtt"), index=index, engine=engine)
    report = score_text(text, "slack-upload.md", index=index, engine=engine, skip_unmatched=True)

Matching (QuestionMatcher): the Chroma index gives the candidates (`index.search`, the same
question+answer passages `interview match` uses); they are re-ranked by the mean of the Chroma
similarity and the best two similarities of the query to the item's question and key points. The
query is first expanded with a small English->Chinese glossary of ML terms, because
multilingual-e5-small alone ranks English questions against the Chinese corpus poorly (bench:
bench/transcript_matching.py). A question whose best score is below `settings.match_threshold` is
"not in corpus": graded without a reference (marked `matched: false`) or, with skip_unmatched, skipped.

Grading goes through SessionEngine: each answer is saved (source "transcript") before it is graded,
and the engine serves a re-scored file from its content cache instead of calling the LLM again.
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from bot import embeddings
from bot.errors import InterviewError, LLMError, ModelError
from bot.grading.grader import Grader, Question
from bot.grading.result import COVERED, Grade
from bot.transcripts import TranscriptError
from bot.transcripts.pairing import pair_transcript
from bot.transcripts.readers import read_path, read_turns

NO_REFERENCE = "(no reference: judge from expert knowledge)"
GENERIC_KEY_POINTS = [
    "The answer addresses the question directly",
    "The answer is technically correct",
    "The answer explains why or how, not only what",
]
CANDIDATES = 5  # Chroma hits re-ranked per question
MAX_QUERY_CHARS = 500  # e5-small reads 512 tokens; a long turn's start holds the question

# General ML/DL vocabulary, English -> Chinese, appended to English questions so that the
# multilingual embedding sees the terms the Chinese corpus uses. Matched at word starts, so
# "overfit" covers overfitting/overfits. Not a translation: unknown words pass through unchanged.
GLOSSARY = {
    "hyperparameter": "超参数", "hyper-parameter": "超参数", "learning rate": "学习率", "batch size": "batch size 批大小",
    "epoch": "epoch 轮数", "optimizer": "优化器", "momentum": "动量", "weight decay": "权重衰减",
    "regulariz": "正则化", "overfit": "过拟合", "over-fit": "过拟合", "underfit": "欠拟合", "under-fit": "欠拟合",
    "generaliz": "泛化", "training set": "训练集", "training data": "训练集 训练数据", "test set": "测试集",
    "validation": "验证集", "held-out": "验证集 测试集", "early stopping": "早停", "loss": "loss 损失",
    "gradient": "梯度", "vanishing": "梯度消失", "exploding": "梯度爆炸", "backprop": "反向传播", "nan": "NaN",
    "debug": "排查", "converge": "收敛", "diverge": "发散", "preprocess": "预处理", "normaliz": "归一化",
    "standardiz": "标准化", "augment": "数据增强", "image": "图像 图片", "pixel": "像素", "dropout": "dropout",
    "batch norm": "batch normalization 批归一化", "batchnorm": "batch normalization 批归一化", "inference": "推理",
    "bias": "偏差", "variance": "方差", "tradeoff": "权衡", "trade-off": "权衡", "dimensionality reduction": "降维",
    "reduce the dimensionality": "降维", "dimension": "维度", "curse": "灾难", "feature": "特征",
    "convolution": "卷积", "fully connected": "全连接", "dense layer": "全连接层", "kernel": "核 卷积核",
    "filter": "卷积核", "weight sharing": "权值共享", "parameter": "参数", "receptive field": "感受野",
    "imbalance": "不平衡", "minority": "少数类", "class": "类别", "oversampl": "过采样", "undersampl": "欠采样",
    "pseudo-label": "伪标签", "pseudo label": "伪标签", "unlabeled": "无标注 未标注", "unlabelled": "无标注 未标注",
    "semi-supervised": "半监督", "group convolution": "分组卷积", "grouped convolution": "分组卷积",
    "depthwise": "深度可分离", "kernel trick": "核技巧 核函数", "kernel function": "核函数", "svm": "SVM 支持向量机",
    "high-dimensional": "高维", "grid search": "网格搜索", "random search": "随机搜索",
    "bayesian optimization": "贝叶斯优化", "boosting": "Boosting", "bagging": "Bagging", "ensemble": "集成学习",
    "pooling": "池化", "max pooling": "最大池化 max pooling", "average pooling": "平均池化 mean pooling",
    "mean pooling": "平均池化", "activation": "激活函数", "non-linear": "非线性", "nonlinear": "非线性",
    "relu": "ReLU", "sigmoid": "sigmoid", "1x1": "1x1", "channel": "通道", "attention": "注意力",
    "transformer": "Transformer", "embedding": "嵌入", "recurrent": "循环神经网络 RNN", "lstm": "LSTM",
    "cross-entropy": "交叉熵", "cross entropy": "交叉熵", "precision": "精确率", "recall": "召回率",
    "transfer learning": "迁移学习", "fine-tun": "微调", "neural network": "神经网络", "deep learning": "深度学习",
}
# Question words: the corpus asks "...的作用是什么？", "...有什么区别？", "原因...解决方案". Added only
# next to a term above, so that "What's your favourite language and why?" is not pulled to the corpus.
QUESTION_WORDS = {
    "purpose": "作用", "role": "作用", "used for": "作用", "advantage": "优势 好处", "benefit": "好处",
    "difference": "区别", "differ": "区别", "compare": "区别 比较", "cause": "原因", "why": "为什么 原因",
    "prevent": "解决方案", "fix": "解决", "address": "解决", "handle": "处理", "solve": "解决", "method": "方法",
    "explain": "解释", "understand": "理解", "problem": "问题", "poorly": "效果差", "tune": "调参", "search": "搜索",
}


def _compile(words: dict[str, str]) -> list[tuple[re.Pattern, str]]:
    return [(re.compile(r"(?<![a-z0-9])" + re.escape(en)), zh) for en, zh in words.items()]


_TERMS_RE, _QWORDS_RE = _compile(GLOSSARY), _compile(QUESTION_WORDS)


def expand_query(text: str) -> str:
    """The question plus the Chinese terms of the English ML words in it (see GLOSSARY)."""
    low = text.lower()
    terms = [zh for rx, zh in _TERMS_RE if rx.search(low)]
    if not terms:
        return text
    extra = dict.fromkeys(terms + [zh for rx, zh in _QWORDS_RE if rx.search(low)])
    return f"{text}（{' '.join(extra)}）"


@dataclass
class MatchResult:
    question_id: str | None  # best corpus item, even below the threshold (shown as "closest")
    corpus_question: str | None
    score: float
    matched: bool


_KP_VECTORS: dict[str, np.ndarray] = {}  # item content hash -> passage vectors of question + key points


class QuestionMatcher:
    def __init__(self, index, items: dict, threshold: float | None = None, k: int = CANDIDATES):
        self.index = index
        self.items = items  # id -> corpus Item (SessionEngine.items)
        self.threshold = index.settings.match_threshold if threshold is None else threshold
        self.k = k
        self._cache: dict[str, MatchResult] = {}

    def _views(self, item) -> np.ndarray:
        key = item.content_hash()
        if key not in _KP_VECTORS:
            _KP_VECTORS[key] = embeddings.embed_passages([item.question, *item.key_points])
        return _KP_VECTORS[key]

    def rank(self, text: str) -> list[tuple[float, str]]:
        """(score, item id) of the Chroma candidates, best first. score = mean of the Chroma
        similarity (question+answer passage) and the top-2 similarities to question and key points:
        a question phrased as a symptom ("loss stays high on the training set") meets a key point."""
        query = expand_query(text.strip()[:MAX_QUERY_CHARS])
        hits = [h for h in self.index.search(query, self.k) if h.item_id in self.items]
        if not hits:
            return []
        qv = embeddings.embed_queries([query])
        scored = []
        for h in hits:
            top2 = np.sort(embeddings.cosine(qv, self._views(self.items[h.item_id]))[0])[-2:]
            scored.append((round((h.similarity + float(top2.mean())) / 2, 4), h.item_id))
        return sorted(scored, reverse=True)

    def best(self, text: str) -> MatchResult:
        key = text.strip()[:MAX_QUERY_CHARS]
        if key not in self._cache:
            ranked = self.rank(key)
            if ranked:
                score, iid = ranked[0]
                self._cache[key] = MatchResult(iid, self.items[iid].question, score, score >= self.threshold)
            else:
                self._cache[key] = MatchResult(None, None, 0.0, False)
        return self._cache[key]


@dataclass
class ScoredItem:
    n: int
    question: str
    line: int
    answer: str
    answer_line: int | None
    matched: bool
    question_id: str | None  # the corpus id when matched, else None
    corpus_question: str | None  # the matched corpus question (or the closest one, when unmatched)
    match_score: float
    status: str = "pending"  # graded | skipped (not in corpus, --skip-unmatched) | error
    grade: Grade | None = None
    error: str | None = None
    closest_id: str | None = None

    @property
    def overall(self) -> float | None:
        return self.grade.overall if self.grade and self.status == "graded" else None

    @property
    def top_missing(self) -> str:
        if not self.grade:
            return ""
        missing = [k.point for k in self.grade.key_points if k.status != COVERED]
        return missing[0] if missing else ""

    def to_dict(self) -> dict:
        g = self.grade if self.status == "graded" else None
        return {
            "n": self.n,
            "line": self.line,
            "question": self.question,
            "question_id": self.question_id,
            "corpus_question": self.corpus_question if self.matched else None,
            "matched": self.matched,
            "match_score": self.match_score,
            "closest_id": None if self.matched else self.closest_id,
            "answer": self.answer,
            "status": self.status,
            "overall": g.overall if g else None,
            "criteria": {c.name: c.score for c in g.criteria} if g else {},
            "key_points": [{"point": k.point, "status": k.status, "evidence": k.evidence} for k in g.key_points] if g else [],
            "wrong_claims": [{"claim": w.claim, "correction": w.correction} for w in g.wrong_claims] if g else [],
            "feedback": dict(g.feedback) if g else {},
            "reference_answer": (g.reference_answer if self.matched else None) if g else None,
            "flags": list(g.flags) if g else [],
            "model": g.model if g else None,
            "error": self.error,
        }


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 1) if xs else None


@dataclass
class ScoreReport:
    source: str
    items: list[ScoredItem]
    overall: float | None  # mean over every graded answer (matched or not)
    unmatched: int  # questions not in the corpus (graded without reference, or skipped)
    format: str = ""
    interviewer: str = ""
    speakers: list[str] = field(default_factory=list)
    small_talk: int = 0  # turns ignored as small talk
    threshold: float = 0.0
    elapsed_s: float = 0.0

    @property
    def overall_matched(self) -> float | None:
        return _mean([i.overall for i in self.items if i.matched and i.overall is not None])

    @property
    def graded(self) -> int:
        return sum(i.status == "graded" for i in self.items)

    @property
    def skipped(self) -> int:
        return sum(i.status == "skipped" for i in self.items)

    @property
    def errors(self) -> int:
        return sum(i.status == "error" for i in self.items)

    def to_dict(self) -> dict:
        """The stable JSON shape, documented in bot/reports/json_report.py."""
        return {
            "source": self.source,
            "format": self.format,
            "interviewer": self.interviewer,
            "speakers": list(self.speakers),
            "overall": self.overall,
            "overall_matched": self.overall_matched,
            "questions": len(self.items),
            "graded": self.graded,
            "unmatched": self.unmatched,
            "skipped": self.skipped,
            "errors": self.errors,
            "small_talk_turns": self.small_talk,
            "match_threshold": self.threshold,
            "elapsed_s": round(self.elapsed_s, 2),
            "items": [i.to_dict() for i in self.items],
        }


def language(text: str) -> str:
    """"zh" when at least a fifth of the letters are CJK, else "en" (what the corpus files declare)."""
    cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return "zh" if cjk and cjk * 3 >= 0.2 * (latin + cjk * 3) else "en"


def unmatched_question(text: str) -> Question:
    """A question that is not in the corpus: graded on generic key points, without a reference.
    The id hashes the text, so the grade cache never mixes two different unmatched questions."""
    qid = "transcript:" + hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:12]
    return Question(qid, text, NO_REFERENCE, list(GENERIC_KEY_POINTS), language(text))


def score_file(path: Path, *, index, engine, interviewer: str | None = None, input_format: str | None = None,
               skip_unmatched: bool = False, progress: Callable[[int, int], None] | None = None,
               threshold: float | None = None) -> ScoreReport:
    """Score one transcript file. TranscriptError (exit 2) for input that cannot be used."""
    return score_text(read_path(Path(path)), str(path), index=index, engine=engine, interviewer=interviewer,
                      input_format=input_format, skip_unmatched=skip_unmatched, progress=progress,
                      threshold=threshold)


def score_text(text: str, name: str, *, index, engine, interviewer: str | None = None,
               input_format: str | None = None, skip_unmatched: bool = False,
               progress: Callable[[int, int], None] | None = None, threshold: float | None = None) -> ScoreReport:
    """Score a transcript given as text (`name` labels messages: a file name or an upload's title).

    Grading errors do not raise: the item gets status "error" (its answer stays saved, `pending` or
    `error`, in the history) and the other items are still graded; after an LLM/model failure the
    remaining answers are saved but not sent to the failing endpoint again."""
    start = time.monotonic()
    turns, fmt = read_turns(text, name, input_format)
    matcher = QuestionMatcher(index, engine.items, threshold)
    pairing = pair_transcript(turns, interviewer=interviewer, matches=lambda q: matcher.best(q).matched, name=name)

    items: list[ScoredItem] = []
    for n, p in enumerate(pairing.pairs, 1):
        m = matcher.best(p.question)
        items.append(ScoredItem(n, p.question, p.line, p.answer, p.answer_line, m.matched,
                                m.question_id if m.matched else None, m.corpus_question, m.score,
                                closest_id=m.question_id))
    if not any(i.matched for i in items) and skip_unmatched:
        raise TranscriptError(f"{name}: none of the {len(items)} question(s) is in the corpus, and "
                              "--skip-unmatched skips them all.", "Drop --skip-unmatched to grade them without a reference.")

    # The off-topic pre-check compares the answer with question+reference. Unmatched questions have
    # only a placeholder reference, and across languages (an English answer to the Chinese corpus)
    # the similarity of correct answers falls to the cut-off (0.77-0.87 vs 0.78 on our samples; same
    # language 0.89-0.96). Those are graded by a view of the engine whose grader skips that one check.
    no_topic_engine = None
    todo = [i for i in items if i.matched or not skip_unmatched]
    for i in items:
        if skip_unmatched and not i.matched:
            i.status = "skipped"
    if progress:
        progress(0, len(todo))
    broken: InterviewError | None = None
    for done, it in enumerate(todo, 1):
        if it.matched:
            question = Question.from_item(engine.items[it.question_id])
        else:
            question = unmatched_question(it.question)
        eng = engine
        if not it.matched or language(it.answer) != question.language:
            no_topic_engine = no_topic_engine or _without_topic_check(engine)
            eng = no_topic_engine
        rec = engine.record(question, it.answer, source="transcript")  # saved before grading
        if broken is not None:
            it.status, it.error = "error", f"not graded: {broken.message}"
        else:
            try:
                it.grade, it.status = eng.grade(rec, question), "graded"
            except (LLMError, ModelError) as e:  # the endpoint or model is down: do not retry per item
                broken, it.status, it.error = e, "error", e.message
            except InterviewError as e:  # e.g. an invalid grade after retries: this item only
                it.status, it.error = "error", e.message
            except Exception as e:  # noqa: BLE001 - a grader bug costs this item, not the report
                it.status, it.error = "error", f"internal error while grading: {type(e).__name__}: {e}"
        if progress:
            progress(done, len(todo))

    return ScoreReport(
        source=name, items=items, overall=_mean([i.overall for i in items if i.overall is not None]),
        unmatched=sum(not i.matched for i in items), format=fmt, interviewer=pairing.interviewer,
        speakers=pairing.speakers, small_talk=pairing.small_talk, threshold=matcher.threshold,
        elapsed_s=time.monotonic() - start)


def _without_topic_check(engine):
    from bot.sessions import SessionEngine

    if engine.grader is None:
        raise InterviewError("This engine has no grader.")
    g = engine.grader
    view = SessionEngine(engine.store, [], Grader(g.llm, retries=g.retries, check_topic=False))
    view.items = engine.items
    return view
