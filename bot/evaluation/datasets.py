"""Human-graded short-answer data sets: the two bundled ones and any JSONL/CSV with a column map.

Built-in (read in place from the benchmarks folder, never copied):
- `ads`    sas_zh_ads/all.jsonl   Chinese, 0-10 integer;  dev = q_id 001-007, test = q_id 008-019
- `mohler` mohler_unt_v2.csv      English, 0-5 (score_avg_0_5), rows `ignored_in_papers` skipped;
                                  dev = assignments 1-5, test = assignments 6-12
The benchmarks folder is $INTERVIEW_BENCHMARKS, else ../shared/benchmarks beside the repo.

Your own file: JSONL or CSV; `columns` maps our fields to yours, e.g.
    question=prompt,reference=ref1+ref2,answer=response,score=grade,question_id=qid,split=fold
Unmapped fields are looked up under common names (question, reference/reference_answer, answer/
student_answer, score/grade, question_id/q_id). `split` (a column holding dev/test) and `skip`
(a true/false column) are optional; without a split column the only split is `all`.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import REPO_ROOT
from bot.corpus import language_of
from bot.errors import NotFoundError, UsageError
from bot.grading.question import is_structural as grader_structural

SPLITS = ("dev", "test", "all")
MAX_PROBLEMS_SHOWN = 20
ALIASES = {
    "question": ("question", "prompt", "question_text"),
    "reference": ("reference", "reference_answer", "reference1", "ref", "desired_answer", "model_answer"),
    "answer": ("answer", "student_answer", "response", "candidate_answer"),
    "score": ("score", "grade", "human_score", "label", "score_avg"),
    "question_id": ("question_id", "q_id", "qid", "item_id"),
    "split": (),
    "skip": (),
    "id": ("id", "row_id"),
}
REQUIRED = ("question", "reference", "answer", "score")


class DatasetError(UsageError):
    """A data set file is missing, unreadable or has bad rows; `problems` are `file:line: what`."""

    def __init__(self, problems: list[str], hint: str | None = None):
        self.problems = list(problems)
        shown = self.problems[:MAX_PROBLEMS_SHOWN]
        more = len(self.problems) - len(shown)
        head = f"{len(self.problems)} problem(s) in the data set:\n" + "\n".join(f"  {p}" for p in shown)
        if more:
            head += f"\n  ... and {more} more"
        super().__init__(head, hint or "Fix the rows shown, or map the right columns with --columns.")


@dataclass
class Row:
    id: str  # stable across runs: the run file is keyed by it, so a run can resume
    question_id: str
    question: str
    reference: str
    answer: str
    human: float  # on the data set's scale, 0..scale_max
    language: str
    source: str = ""  # file:line
    key_points: list[str] | None = None  # curated key points (our corpus), else drafted
    labels: dict[int, str] | None = None  # 0-based key point -> stated | partly | missing | contradicted
    translations: dict[str, list[str]] | None = None  # language -> the curated key points in it
    structural: bool = False  # a behavioural item's (question.Question.structural)
    references: dict[str, str] | None = None  # language -> the reference written in it


@dataclass
class Dataset:
    name: str
    path: Path
    split: str
    scale_max: float
    step: float  # grid of the human scale: categories for kappa and exact agreement
    language: str
    rows: list[Row]
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows left out

    def describe(self) -> dict:
        return {"name": self.name, "path": str(self.path), "split": self.split, "scale_max": self.scale_max,
                "step": self.step, "language": self.language, "rows": len(self.rows),
                "questions": len({r.question_id for r in self.rows}), "skipped": dict(self.skipped)}


def benchmarks_dir() -> Path:
    env = os.environ.get("INTERVIEW_BENCHMARKS")
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared" / "benchmarks"


BUILTIN = {"ads": "sas_zh_ads/all.jsonl", "mohler": "mohler_unt_v2.csv", "corpus": "bench/data/graded",
           "behavioural": "bench/data/graded-behavioural"}
BUILTIN_ALIASES = {"ads": "ads", "sas_zh_ads": "ads", "sas-zh-ads": "ads", "mohler": "mohler",
                   "mohler_unt_v2": "mohler", "mohler-unt-v2": "mohler", "corpus": "corpus",
                   "behavioural": "behavioural", "behavioral": "behavioural"}
GRADED_DIR = REPO_ROOT / "bench" / "data" / "graded"
# Answers to behavioural items, graded the same way: kept apart from `corpus` (fact questions), so
# that each set's numbers stay comparable across versions.
BEHAVIOURAL_DIR = REPO_ROOT / "bench" / "data" / "graded-behavioural"
LABELS = ("stated", "partly", "missing", "contradicted")


def corpus_split(question_id: str) -> str:
    """Our graded answers split by item: odd-numbered items are dev, even ones test."""
    digits = re.sub(r"\D", "", question_id)
    return "test" if digits and int(digits) % 2 == 0 else "dev"


def load_behavioural(split: str = "test", path: Path | None = None) -> Dataset:
    ds = load_graded(split, path or BEHAVIOURAL_DIR)
    ds.name = "behavioural"
    return ds


def load_graded(split: str = "test", path: Path | None = None, corpus_paths: list[Path] | None = None) -> Dataset:
    """Our own hand-graded answers to corpus items (bench/data/graded/*.jsonl): a 0-10 score and a
    label for every key point, graded against the corpus's reference and key points."""
    from bot import corpus as corpus_mod
    from bot.config import DEFAULT_CORPUS_DIR

    path = path or GRADED_DIR
    split = _check_split(split)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise NotFoundError(f"No graded answer files (*.jsonl) in {path}.")
    items = {i.id: i for i in corpus_mod.load_items(corpus_paths or [DEFAULT_CORPUS_DIR])}
    rows, problems = [], []
    for f in files:
        for lineno, rec in _records(f):
            where = f"{f}:{lineno}"
            missing = [k for k in ("id", "question_id", "answer", "score", "key_points") if k not in rec]
            if missing:
                problems.append(f"{where}: lacks {', '.join(missing)}")
                continue
            item = items.get(rec["question_id"])
            if item is None:
                problems.append(f"{where}: question_id {rec['question_id']!r} is not in the corpus")
                continue
            human = _score(rec["score"], where, problems)
            if human is None:
                continue
            labels = {}
            for k, v in (rec["key_points"] or {}).items():
                if not str(k).isdigit() or not 1 <= int(k) <= len(item.key_points) or v not in LABELS:
                    problems.append(f"{where}: key point label {k!r}: {v!r} (numbers 1-{len(item.key_points)}, "
                                    f"labels {', '.join(LABELS)})")
                    continue
                labels[int(k) - 1] = v
            if split != "all" and corpus_split(item.id) != split:
                continue
            rows.append(Row(f"corpus:{rec['id']}", item.id, item.question, item.answer, rec["answer"] or "", human,
                            language_of(rec["answer"] or item.question), where, list(item.key_points), labels,
                            dict(item.translations), structural=grader_structural(item.domain),
                            references=dict(item.answers)))
    if problems:
        raise DatasetError(problems)
    return Dataset("corpus", path, split, 10.0, 0.5, "mixed", rows)


def builtin_name(spec: str | Path) -> str | None:
    """`ads`/`mohler` (or a path to their files) -> the built-in loader's name, else None."""
    s = str(spec)
    if s.lower() in BUILTIN_ALIASES:
        return BUILTIN_ALIASES[s.lower()]
    p = Path(s)
    if p.name == "all.jsonl" and p.parent.name == "sas_zh_ads":
        return "ads"
    if p.name == "mohler_unt_v2.csv":
        return "mohler"
    return None


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise UsageError(f"--split {split!r} is not one of {', '.join(SPLITS)}.")
    return split


def _open(path: Path):
    if not path.is_file():
        hint = ("Set INTERVIEW_BENCHMARKS to the folder holding sas_zh_ads/ and mohler_unt_v2.csv."
                if path.is_relative_to(benchmarks_dir()) else "Pass an existing .jsonl or .csv file.")
        raise NotFoundError(f"Data set file {path} does not exist.", hint)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError([f"{path}:1: not UTF-8 ({e.reason} at byte {e.start})"], "Save the file as UTF-8.") from None


def _records(path: Path) -> list[tuple[int, dict]]:
    """(line, record) of a JSONL or CSV file; JSON errors are collected, not raised one by one."""
    text = _open(path)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        out, problems = [], []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{path}:{lineno}: not valid JSON ({e.msg}, column {e.colno})")
                continue
            if not isinstance(rec, dict):
                problems.append(f"{path}:{lineno}: a line must be a JSON object, not {type(rec).__name__}")
                continue
            out.append((lineno, rec))
        if problems:
            raise DatasetError(problems, "Each line must be one JSON object.")
        return out
    if path.suffix.lower() in (".csv", ".tsv"):
        reader = csv.DictReader(text.splitlines(keepends=True), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        out, start = [], 2
        for rec in reader:
            out.append((start, rec))
            start = reader.line_num + 1  # a quoted field may span lines
        return out
    raise UsageError(f"{path}: unknown data set format {path.suffix!r}.", "Use a .jsonl or .csv file.")


def _score(raw, where: str, problems: list[str]) -> float | None:
    try:
        v = float(str(raw).strip())
    except (TypeError, ValueError):
        problems.append(f"{where}: score {raw!r} is not a number")
        return None
    if math.isnan(v) or v < 0:
        problems.append(f"{where}: score {raw!r} must be a number >= 0")
        return None
    return v


def _join_references(refs: list[str]) -> str:
    refs = [r.strip() for r in refs if r and str(r).strip()]
    return refs[0] if len(refs) == 1 else "\n\n".join(f"({i}) {r}" for i, r in enumerate(refs, 1))


def load_ads(split: str = "test", path: Path | None = None) -> Dataset:
    path = path or benchmarks_dir() / BUILTIN["ads"]
    split = _check_split(split)
    rows, problems = [], []
    for lineno, rec in _records(path):
        where = f"{path}:{lineno}"
        missing = [k for k in ("q_id", "question", "reference1", "answer", "score") if k not in rec]
        if missing:
            problems.append(f"{where}: lacks {', '.join(missing)}")
            continue
        qid = str(rec["q_id"]).strip()
        if not qid.isdigit():
            problems.append(f"{where}: q_id {qid!r} is not a number like 001")
            continue
        human = _score(rec["score"], where, problems)
        if human is None:
            continue
        if human > 10:
            problems.append(f"{where}: score {human:g} is above 10")
            continue
        if split != "all" and (split == "dev") != (int(qid) <= 7):
            continue
        rows.append(Row(f"ads:{qid}:{lineno}", qid, rec["question"].strip(),
                        _join_references([rec.get(f"reference{i}", "") for i in (1, 2, 3)]),
                        rec["answer"] or "", human, "zh", where))
    if problems:
        raise DatasetError(problems)
    return Dataset("ads", path, split, 10.0, 1.0, "zh", rows)


def load_mohler(split: str = "test", path: Path | None = None) -> Dataset:
    path = path or benchmarks_dir() / BUILTIN["mohler"]
    split = _check_split(split)
    rows, problems, ignored = [], [], 0
    cols = ("question_id", "assignment", "ignored_in_papers", "question", "reference_answer", "student_index",
            "student_answer", "score_avg_0_5")
    for lineno, rec in _records(path):
        where = f"{path}:{lineno}"
        missing = [k for k in cols if rec.get(k) is None]
        if missing:
            problems.append(f"{where}: lacks {', '.join(missing)}")
            continue
        if rec["ignored_in_papers"].strip().lower() == "true":
            ignored += 1  # selection/ordering questions, left out of all published results
            continue
        try:
            assignment = int(rec["assignment"])
        except ValueError:
            problems.append(f"{where}: assignment {rec['assignment']!r} is not a number")
            continue
        human = _score(rec["score_avg_0_5"], where, problems)
        if human is None:
            continue
        if human > 5:
            problems.append(f"{where}: score_avg_0_5 {human:g} is above 5")
            continue
        if split != "all" and (split == "dev") != (assignment <= 5):
            continue
        qid = rec["question_id"].strip()
        rows.append(Row(f"mohler:{qid}:{rec['student_index'].strip()}", qid, rec["question"].strip(),
                        rec["reference_answer"].strip(), rec["student_answer"], human, "en", where))
    if problems:
        raise DatasetError(problems)
    return Dataset("mohler", path, split, 5.0, 0.5, "en", rows, {"ignored_in_papers": ignored})


def parse_columns(spec: str | None) -> dict[str, list[str]]:
    """`question=q,reference=r1+r2,...` -> {"question": ["q"], "reference": ["r1", "r2"], ...}."""
    out: dict[str, list[str]] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ALIASES or not value.strip():
            raise UsageError(f"--columns: {part.strip()!r} is not FIELD=COLUMN.",
                             f"FIELD is one of {', '.join(ALIASES)}; join several reference columns with '+'.")
        out[key] = [c.strip() for c in value.split("+") if c.strip()]
    return out


def _resolve_columns(path: Path, header: list[str], mapping: dict[str, list[str]]) -> dict[str, list[str]]:
    cols = dict(mapping)
    lower = {h.lower(): h for h in header}
    for key, names in ALIASES.items():
        if key not in cols:
            found = next((lower[n] for n in names if n in lower), None)
            if found:
                cols[key] = [found]
    missing = [k for k in REQUIRED if k not in cols]
    unknown = [c for cs in cols.values() for c in cs if c not in header]
    if missing or unknown:
        what = [f"no column for {', '.join(missing)}"] if missing else []
        what += [f"column {c!r} does not exist" for c in unknown]
        raise DatasetError([f"{path}:1: {w} (columns: {', '.join(header)})" for w in what],
                           "Map them with --columns question=COL,reference=COL,answer=COL,score=COL.")
    return cols


def _grid(scores: list[float], scale_max: float) -> float:
    """The finest of 1, 0.5, 0.25 that holds every score, with at most 21 categories; else tenths."""
    for step in (1.0, 0.5, 0.25):
        if scale_max / step <= 20 and all(abs(s / step - round(s / step)) < 1e-6 for s in scores):
            return step
    return scale_max / 10


def load_table(path: Path, columns: dict[str, list[str]] | None = None, *, split: str = "all",
               scale_max: float | None = None, language: str | None = None, name: str | None = None) -> Dataset:
    path = Path(path)
    split = _check_split(split)
    records = _records(path)
    if not records:
        raise DatasetError([f"{path}:1: no rows"])
    header = list(dict.fromkeys(k for _, rec in records[:50] for k in rec))
    cols = _resolve_columns(path, header, columns or {})
    if split != "all" and "split" not in cols:
        raise UsageError(f"{path} has no split column, so --split {split} means nothing.",
                         "Map one with --columns split=COLUMN (values dev/test), or use --split all.")
    rows, problems, skipped = [], [], 0

    def text(v) -> str:
        return "" if v is None else str(v).strip()  # 0 is a score, not a missing value

    def get(rec: dict, key: str) -> str:
        return " ".join(text(rec.get(c)) for c in cols.get(key, [])).strip()

    for lineno, rec in records:
        where = f"{path}:{lineno}"
        if "skip" in cols and get(rec, "skip").lower() in ("1", "true", "yes", "y"):
            skipped += 1
            continue
        if split != "all" and get(rec, "split").lower() != split:
            continue
        human = _score(get(rec, "score"), where, problems)
        question = get(rec, "question")
        reference = _join_references([text(rec.get(c)) for c in cols["reference"]])
        if not question or not reference:
            problems.append(f"{where}: the {'question' if not question else 'reference'} is empty")
        if human is None or not question or not reference:
            continue
        # Without an id column the question text is the id (hashed: stable across runs).
        qid = get(rec, "question_id") or "q" + hashlib.sha256(question.encode("utf-8")).hexdigest()[:8]
        rows.append(Row(f"{path.stem}:{get(rec, 'id') or lineno}", qid, question, reference,
                        text(rec.get(cols["answer"][0])), human, "", where))
    if problems:
        raise DatasetError(problems)
    if not rows:
        raise DatasetError([f"{path}:1: no rows in split {split!r}"],
                           "Check the split column's values (dev/test) or use --split all.")
    top = max(r.human for r in rows)
    if scale_max is None:
        scale_max = next(m for m in (1.0, 5.0, 10.0, 100.0, float(top)) if top <= m)
    bad = [f"{r.source}: score {r.human:g} is above the scale maximum {scale_max:g}" for r in rows if r.human > scale_max]
    if bad:
        raise DatasetError(bad, "Pass the right --scale-max.")
    for r in rows:
        r.language = language or language_of(r.question + r.reference)
    langs = {r.language for r in rows}
    return Dataset(name or path.stem, path, split, float(scale_max), _grid([r.human for r in rows], scale_max),
                   langs.pop() if len(langs) == 1 else "mixed", rows, {"skip column": skipped} if skipped else {})


def load(spec: str | Path, split: str | None = None, *, columns: dict[str, list[str]] | None = None,
         scale_max: float | None = None, language: str | None = None) -> Dataset:
    """A built-in data set by name (or its file), else a JSONL/CSV file. Default split: test for
    the built-ins (tune on dev, report test), all for your own file."""
    builtin = builtin_name(spec)
    if builtin and not columns:
        path = Path(spec) if Path(str(spec)).is_file() else None
        loader = {"ads": load_ads, "mohler": load_mohler, "corpus": load_graded, "behavioural": load_behavioural}[builtin]
        return loader(split or "test", path)
    path = Path(spec).expanduser()
    if not path.exists():
        raise NotFoundError(f"{spec} is neither a known data set nor a file.",
                            f"Use {' or '.join(BUILTIN)}, or a path to a .jsonl/.csv file.")
    return load_table(path, columns, split=split or "all", scale_max=scale_max, language=language)


def slug(question_id: str) -> str:
    """A corpus-style id for a data set question (`interview corpus keypoints` output)."""
    s = re.sub(r"[^a-z0-9._-]+", "-", question_id.lower()).strip("-.")
    return (s or "q")[:56]
