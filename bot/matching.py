"""Which corpus question does a free-text question ask? Used by `interview match`, `interview grade
--question TEXT`, transcripts and Slack alike.

The Chroma index gives the candidates (`QuestionIndex.search` over question+answer passages); they
are re-ranked by the mean of the Chroma similarity and the best two similarities of the query to
the item's question and key points, so a question phrased as a symptom ("loss stays high on the
training set") meets a key point. English questions are first expanded with a small
English->Chinese glossary of ML terms, because multilingual-e5-small alone ranks English questions
against the Chinese corpus poorly (bench/transcript_matching.py: top-1 82% raw -> 94% re-ranked).
Whether the best candidate IS the question is a separate decision (`ACCEPT`): similarity alone
let 44% of off-corpus questions through at the old cut (0.87), because a near topic ("What is a
Bloom filter?" next to the hashing item) scores as high as a paraphrase.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from bot import embeddings
from bot.corpus import language_of

# Is the best candidate the question asked? A logistic model over three numbers: the re-ranked
# score, the similarity to the item's own question (either language) and the lead over the second
# candidate (a near topic sits close to several items; a paraphrase stands out from them). Fitted on
# the dev half (by item) of bench/transcript_matching.py's paraphrases and off-corpus questions; the
# test half is what the benchmark reports. Its output is the match confidence that
# `settings.match_threshold` cuts.
ACCEPT = {"score": 21.71, "question": 33.82, "margin": 93.71, "bias": -50.66}

CANDIDATES = 10  # Chroma hits re-ranked per question (225 items: the right one was often 6th-10th)
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
    score: float  # the re-ranked similarity
    matched: bool
    confidence: float = 0.0  # ACCEPT's probability that this is the question asked
    candidates: list[tuple[float, str]] = field(default_factory=list)  # (score, item id), best first


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
            points = item.key_points + [p for pts in item.translations.values() for p in pts]
            _KP_VECTORS[key] = embeddings.embed_passages([item.question, *item.questions.values(), *points])
        return _KP_VECTORS[key]

    def rank(self, text: str) -> list[tuple[float, str]]:
        """(score, item id) of the Chroma candidates, best first. score = mean of the Chroma
        similarity (question+answer passage) and the top-2 similarities to question and key points:
        a question phrased as a symptom ("loss stays high on the training set") meets a key point."""
        return [(score, iid) for score, iid, _ in self._ranked(text)]

    def _ranked(self, text: str) -> list[tuple[float, str, float]]:
        """(score, item id, similarity to the item's own question), best first."""
        query = expand_query(text.strip()[:MAX_QUERY_CHARS])
        packs = {i.corpus for i in self.items.values()} or None
        hits = [h for h in self.index.search(query, self.k, packs=packs)
                if h.item_id in self.items and self.items[h.item_id].corpus == h.corpus]
        if not hits:
            return []
        qv = embeddings.embed_queries([query])
        scored = []
        for h in hits:
            item = self.items[h.item_id]
            sims = embeddings.cosine(qv, self._views(item))[0]
            top2 = np.sort(sims)[-2:]
            own_question = float(sims[:1 + len(item.questions)].max())  # _views puts the questions first
            scored.append((round((h.similarity + float(top2.mean())) / 2, 4), h.item_id, own_question))
        return self._merge_twins(sorted(scored, reverse=True), language_of(text))

    def _merge_twins(self, ranked: list[tuple[float, str, float]], lang: str) -> list[tuple[float, str, float]]:
        """One entry per question: items declared `same as` each other are one candidate, named by the
        twin in the asker's language (a Chinese transcript asking about a conflict with a colleague
        is graded against beh-zh-001, not beh-en-001), with the best score of the twins. Twins no
        longer compete, so the lead over the next candidate (ACCEPT's margin) is over another
        question, not over the same one in another language."""
        out: list[tuple[float, str, float]] = []
        taken: set[str] = set()
        for score, iid, own in ranked:
            if iid in taken:
                continue
            group = [iid, *(t for t in self.items[iid].same_as if t in self.items)]
            taken.update(group)
            if len(group) > 1:
                own = max(o for _, i, o in ranked if i in group)
                if self.items[iid].language != lang:
                    # the best-ranked twin in the asker's language, else any loaded one
                    iid = next((i for _, i, _ in ranked if i in group and self.items[i].language == lang),
                               next((i for i in group if self.items[i].language == lang), iid))
            out.append((score, iid, own))
        return out

    @staticmethod
    def confidence(ranked: list[tuple[float, str, float]]) -> float:
        """ACCEPT's probability that the first of `ranked` is the question asked."""
        if not ranked:
            return 0.0
        score, _, own_question = ranked[0]
        margin = score - ranked[1][0] if len(ranked) > 1 else score
        z = (ACCEPT["score"] * score + ACCEPT["question"] * own_question + ACCEPT["margin"] * margin
             + ACCEPT["bias"])
        return round(1 / (1 + math.exp(-z)), 4)

    def best(self, text: str) -> MatchResult:
        key = text.strip()[:MAX_QUERY_CHARS]
        if key not in self._cache:
            ranked = self._ranked(key)
            if ranked:
                score, iid, _ = ranked[0]
                conf = self.confidence(ranked)
                self._cache[key] = MatchResult(iid, self.items[iid].question, score, conf >= self.threshold, conf,
                                               [(sc, i) for sc, i, _ in ranked])
            else:
                self._cache[key] = MatchResult(None, None, 0.0, False)
        return self._cache[key]


