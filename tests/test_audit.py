"""`interview corpus audit`: the shipped packs pass (errors fail the build), and each kind of
problem in a pack is found."""
import json

from typer.testing import CliRunner

from bot.audit import audit
from bot.cli import app
from tests.conftest import PACKS

BAD = """---
name: bad-pack
title: A pack with problems
language: en
domain: machine learning
---

## bad-001: What is overfitting?
tags: ml
difficulty: easy

### Answer
Overfitting is when a model learns the noise of its training data: it scores well on the training
set and poorly on new data. Regularization, more data and early stopping reduce it.

### Key points
- An overfit model scores well on training data but poorly on new data
- Regularization, more data and early stopping reduce overfitting
- The Eiffel Tower is in Paris and opened in 1889
- Overfitting means the model scores well on training data and badly on new data

## bad-002: What does overfitting mean?
tags: ml
difficulty: easy

### Answer
A model overfits when it fits the noise in its training data, so it does well on training data and
badly on unseen data.

### Key points
- An overfit model fits noise in the training data
- It does well on training data and badly on unseen data
- Overfitting is reduced by regularization
"""

ZH = """---
name: zh-pack
language: zh
domain: deep learning
---

## zh-001: 什么是过拟合？
tags: 过拟合
difficulty: easy

### Answer
过拟合是模型把训练数据中的噪声也学了进去，在训练集上表现很好，在新数据上表现差。可以用正则化、早停和更多数据缓解。

### Key points
- 过拟合的模型在训练集上表现好，在新数据上表现差
- 正则化、早停和增加数据可以缓解过拟合
- 过拟合是把训练数据中的噪声也学了进去
"""


def test_every_shipped_pack_passes_the_audit():
    report = audit([PACKS])
    assert report.errors == [], "\n".join(f"{f.pack}/{f.item}: {f.message}" for f in report.errors)
    counts = report.counts()
    assert len(counts) >= 13 and all(c["items"] >= 15 for c in counts.values())
    assert sum(c["items"] for c in counts.values()) >= 225


def test_each_problem_is_found_and_errors_exit_1(tmp_path):
    (tmp_path / "bad.md").write_text(BAD, encoding="utf-8")
    (tmp_path / "zh.md").write_text(ZH, encoding="utf-8")
    report = audit([tmp_path])
    by = {(f.item, f.check, f.level) for f in report.findings}
    assert ("bad-001", "support", "error") in by  # the Eiffel Tower is not in the reference
    assert not any(f.item == "bad-001" and "key point 1 " in f.message for f in report.findings)
    assert ("bad-001", "repeated", "warning") in by  # key points 1 and 4
    assert ("bad-001", "duplicate", "warning") in by  # bad-002 asks the same
    assert ("zh-001", "fields", "warning") in by  # no English key points
    assert [f.item for f in report.errors] == ["bad-001"]

    runner = CliRunner()
    res = runner.invoke(app, ["corpus", "audit", "--corpus", str(tmp_path), "--format", "json"])
    assert res.exit_code == 1
    data = json.loads(res.stdout)
    assert data["errors"] == 1 and data["packs"]["bad-pack"]["errors"] == 1 and data["packs"]["zh-pack"]["items"] == 1
    md = runner.invoke(app, ["corpus", "audit", "zh-pack", "--corpus", str(tmp_path)])
    assert md.exit_code == 0 and "| zh-pack | 1 | 0 |" in md.stdout and "bad-pack" not in md.stdout
    out = tmp_path / "audit.html"
    html = runner.invoke(app, ["corpus", "audit", "--corpus", str(tmp_path), "--format", "html", "--out", str(out)])
    assert html.exit_code == 1 and "Eiffel Tower" in out.read_text(encoding="utf-8")
    assert "<script" not in out.read_text(encoding="utf-8")
    unknown = runner.invoke(app, ["corpus", "audit", "nope", "--corpus", str(tmp_path)])
    assert unknown.exit_code == 2 and "No pack named nope" in unknown.output


EN_TWIN = """---
name: en-pack
language: en
domain: deep learning
---

## en-001: What is overfitting, and how do you reduce it?
tags: overfitting
difficulty: easy

### Answer
Overfitting is when a model learns the noise of its training data: it does well on the training set
and badly on new data. Regularization, early stopping and more data reduce it.

### Key points
- An overfit model does well on the training set and badly on new data
- Regularization, early stopping and more data reduce overfitting
- Overfitting means the model learned the noise of its training data

### Question (zh)
什么是过拟合？如何缓解？
"""


def test_the_same_question_in_two_languages_is_found_unless_declared_same_as(tmp_path):
    (tmp_path / "zh.md").write_text(ZH, encoding="utf-8")
    (tmp_path / "en.md").write_text(EN_TWIN, encoding="utf-8")
    dup = [f for f in audit([tmp_path]).findings if f.check == "duplicate"]
    assert [(f.item, f.level) for f in dup] == [("en-001", "warning")] and "same as: zh-001" in dup[0].message

    (tmp_path / "en.md").write_text(EN_TWIN.replace("difficulty: easy", "difficulty: easy\nsame as: zh-001"), encoding="utf-8")
    assert not [f for f in audit([tmp_path]).findings if f.check == "duplicate"]

    (tmp_path / "en.md").write_text(EN_TWIN.replace("difficulty: easy", "difficulty: easy\nsame as: zh-404"), encoding="utf-8")
    report = audit([tmp_path])
    assert [(f.item, f.check) for f in report.errors] == [("en-001", "format")]
    assert "`same as: zh-404` names no item" in report.errors[0].message
