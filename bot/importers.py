"""Questions people already keep, read into corpus items: CSV/TSV (header detected or not),
JSON/JSONL, and Anki exports (notes as text, and .apkg decks).

Every reader returns rows with the line (or note) they came from and collects every problem as
`file:line: what is wrong`; the caller writes nothing unless the whole file reads cleanly.
"""
from __future__ import annotations

import csv
import html
import io
import json
import re
import sqlite3
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import CorpusError, StoreError, UsageError

FORMATS = ("csv", "tsv", "json", "jsonl", "anki", "apkg")
COLUMNS = {  # accepted header names -> field
    "question": "question", "q": "question", "prompt": "question", "front": "question", "问题": "question",
    "answer": "answer", "a": "answer", "reference": "answer", "back": "answer", "答案": "answer", "参考答案": "answer",
    "key_points": "key_points", "key points": "key_points", "keypoints": "key_points", "points": "key_points",
    "要点": "key_points", "tags": "tags", "tag": "tags", "标签": "tags", "difficulty": "difficulty", "难度": "difficulty",
    "id": "id",
}
ORDER = ("question", "answer", "key_points", "tags", "difficulty")  # columns of a file without a header
DIFFICULTIES = {"easy": "easy", "medium": "medium", "hard": "hard", "简单": "easy", "中等": "medium", "困难": "hard"}


@dataclass
class Row:
    question: str
    answer: str
    line: int
    key_points: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    difficulty: str = "medium"
    id: str = ""


def detect_format(path: Path, fmt: str | None = None) -> str:
    if fmt:
        fmt = fmt.lower().lstrip(".")
        if fmt not in FORMATS:
            raise UsageError(f"Unknown --format {fmt!r}.", f"Use one of: {', '.join(FORMATS)}.")
        return fmt
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("csv", "tsv", "json", "jsonl", "apkg"):
        return suffix
    if suffix == "txt":
        return "anki"  # Anki's "Notes in Plain Text" export
    raise UsageError(f"{path}: cannot tell the format from the extension {path.suffix or '(none)'}.",
                     f"Pass --format ({', '.join(FORMATS)}).")


def read(path: Path, fmt: str | None = None) -> list[Row]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} does not exist.", "Pass the file to import.")
    kind = detect_format(path, fmt)
    if kind == "apkg":
        rows, problems = _apkg(path)
    else:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as e:
            raise CorpusError([f"{path}:1: not UTF-8 ({e.reason} at byte {e.start})"], "Save the file as UTF-8.") from None
        reader = {"csv": _delimited, "tsv": _delimited, "json": _json, "jsonl": _jsonl, "anki": _anki_text}[kind]
        rows, problems = reader(text, str(path), "\t" if kind == "tsv" else None)
    if not rows and not problems:
        problems.append(f"{path}:1: no questions found")
    if problems:
        raise CorpusError(problems, "Fix the lines shown and import again; nothing was written.")
    return rows


# --- field values ---------------------------------------------------------------------------

def _split_points(value) -> list[str]:
    """One point per list item, or per line or `;`/`|` part of a text; each on one line (a pack
    writes a point as one `- ` line)."""
    if isinstance(value, list):
        parts = [str(v) for v in value]
    else:  # split, then stripped below: `\s*;` would be quadratic on a run of spaces
        parts = [p for line in str(value or "").splitlines() for p in re.split(r"[;；|]", line)]
    return [" ".join(re.sub(r"^\s*(?:[-*•·]|\d+[.)、])\s*", "", p).split()) for p in parts if p.strip()]


def _split_tags(value) -> list[str]:
    """A text splits at commas, semicolons and spaces; a list is a tag per item, on one line."""
    if isinstance(value, list):
        return [" ".join(str(t).split()) for t in value if str(t).strip()]
    return [t for t in re.split(r"[,，;；\s]+", str(value or "")) if t]


def _row(data: dict, line: int, where: str, problems: list[str]) -> Row | None:
    q = " ".join(str(data.get("question") or "").split())
    a = "\n".join(str(data.get("answer") or "").splitlines()).strip()  # \r and the rest as a pack reads them
    bad = [name for name, v in (("question", q), ("answer", a)) if not v]
    if bad:
        problems.append(f"{where}:{line}: no {' and no '.join(bad)}")
        return None
    diff = str(data.get("difficulty") or "medium").strip().lower()
    if diff not in DIFFICULTIES:
        problems.append(f"{where}:{line}: difficulty {diff!r} is not easy, medium or hard")
        return None
    points = _split_points(data.get("key_points"))
    if points and not 3 <= len(points) <= 8:
        problems.append(f"{where}:{line}: {len(points)} key points; give 3-8 (or none, to have them drafted)")
        return None
    return Row(q, a, line, points, _split_tags(data.get("tags")), DIFFICULTIES[diff], str(data.get("id") or "").strip())


# --- readers --------------------------------------------------------------------------------

def _header(cells: list[str]) -> dict[int, str] | None:
    """Column index -> field when the row is a header (it names the question and answer columns)."""
    found = {i: COLUMNS[c.strip().lower()] for i, c in enumerate(cells) if c.strip().lower() in COLUMNS}
    return found if {"question", "answer"} <= set(found.values()) else None


def _delimited(text: str, where: str, delimiter: str | None) -> tuple[list[Row], list[str]]:
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",\t;").delimiter
        except csv.Error:
            delimiter = ","
    rows, problems = [], []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    columns: dict[int, str] | None = None
    first = True
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if first:
                first = False
                columns = _header(cells)
                if columns is not None:
                    continue
                columns = dict(enumerate(ORDER))
            if len(cells) < 2:
                problems.append(f"{where}:{line}: {len(cells)} column(s); need at least question and answer")
                continue
            data = {columns[i]: c for i, c in enumerate(cells) if i in columns}
            if (r := _row(data, line, where, problems)) is not None:
                rows.append(r)
    except csv.Error as e:
        problems.append(f"{where}:{reader.line_num}: {e}")
    return rows, problems


def _objects(objs, where: str, lines: list[int]) -> tuple[list[Row], list[str]]:
    rows, problems = [], []
    for obj, line in zip(objs, lines):
        if not isinstance(obj, dict):
            problems.append(f"{where}:{line}: expected an object with question and answer, got {type(obj).__name__}")
            continue
        data = {COLUMNS.get(k.strip().lower(), k): v for k, v in obj.items()}
        if (r := _row(data, line, where, problems)) is not None:
            rows.append(r)
    return rows, problems


def _json(text: str, where: str, _=None) -> tuple[list[Row], list[str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        return [], [f"{where}:{e.lineno}: not valid JSON ({e.msg})"]
    except RecursionError:
        return [], [f"{where}:1: JSON nested too deeply for a list of questions"]
    if isinstance(data, dict):
        data = data.get("items") or data.get("questions") or data.get("cards")
    if not isinstance(data, list):
        return [], [f"{where}:1: expected a list of questions (or {{\"items\": [...]}})"]
    return _objects(data, where, _element_lines(text, len(data)))


def _element_lines(text: str, n: int) -> list[int]:
    """The line each element of the JSON list starts on (the first list in the text). Newlines are
    counted on from the previous element, not from the file's start (quadratic)."""
    m = re.search(r'"(?:items|questions|cards)"\s*:\s*\[', text) if not text.lstrip().startswith("[") else None
    pos = (m.end() if m else text.index("[") + 1)
    dec, lines = json.JSONDecoder(), []
    line, counted = 1, 0
    while len(lines) < n:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        try:
            _, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError:
            break
        line += text.count("\n", counted, pos)
        counted = pos
        lines.append(line)
        pos = end
    return lines + [1] * (n - len(lines))



def _jsonl(text: str, where: str, _=None) -> tuple[list[Row], list[str]]:
    objs, lines, problems = [], [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            objs.append(json.loads(line))
            lines.append(n)
        except json.JSONDecodeError as e:
            problems.append(f"{where}:{n}: not valid JSON ({e.msg})")
        except RecursionError:
            problems.append(f"{where}:{n}: JSON nested too deeply for a question")
    rows, more = _objects(objs, where, lines)
    return rows, problems + more


def _strip_html(value: str) -> str:
    value = re.sub(r"(?i)<br\s*/?>|</(?:div|p|li)>", "\n", value)
    value = re.sub(r"<[^<>]+>", "", value)  # [^<>], not [^>]: each `<` of `<<<...` would scan to the end
    value = re.sub(r"\[sound:[^\[\]]*\]", "", value)
    return "\n".join(line.strip() for line in html.unescape(value).splitlines() if line.strip())


ANKI_SEPARATORS = {"tab": "\t", "comma": ",", "semicolon": ";", "space": " ", "pipe": "|"}


def _anki_text(text: str, where: str, _=None) -> tuple[list[Row], list[str]]:
    """Anki's "Notes in Plain Text": `#key:value` header lines, then tab-separated fields."""
    lines = text.splitlines()
    sep, tags_col, html_on, body_start, problems = _anki_header(lines, where)
    rows: list[Row] = []
    if problems:
        return rows, problems
    reader = csv.reader(io.StringIO("\n".join(lines[body_start:])), delimiter=sep)
    clean = _strip_html if html_on else str.strip
    try:
        for cells in reader:
            line = body_start + reader.line_num
            if not any(c.strip() for c in cells):
                continue
            tags = cells[tags_col] if tags_col is not None and tags_col < len(cells) else ""
            fields = [c for i, c in enumerate(cells) if i != tags_col]
            if len(fields) < 2:
                problems.append(f"{where}:{line}: a note needs a front and a back field")
                continue
            data = {"question": clean(fields[0]), "answer": clean(fields[1]), "tags": tags}
            if (r := _row(data, line, where, problems)) is not None:
                rows.append(r)
    except csv.Error as e:
        problems.append(f"{where}:{body_start + reader.line_num}: {e}")
    return rows, problems


def _anki_header(lines: list[str], where: str) -> tuple[str, int | None, bool, int, list[str]]:
    """The `#key:value` lines at the top: the separator, the tags column (0-based), whether fields
    are HTML, the index of the first note line, and what is wrong in them."""
    sep, tags_col, html_on, problems = "\t", None, True, []
    body_start = len(lines)
    for n, line in enumerate(lines):
        if not line.startswith("#"):
            body_start = n
            break
        key, _, value = line[1:].partition(":")
        key = key.strip().lower()
        if key == "separator":
            sep = ANKI_SEPARATORS.get(value.strip().lower(), value)
            if len(sep) != 1:
                problems.append(f"{where}:{n + 1}: `#separator:{value}` is not one character "
                                f"(or {', '.join(ANKI_SEPARATORS)})")
        elif key == "tags column":
            if re.fullmatch(r"[0-9]{1,4}", value.strip()) and int(value) >= 1:
                tags_col = int(value) - 1
            else:
                problems.append(f"{where}:{n + 1}: `#tags column:{value}` is not a column number (1, 2, ...)")
        elif key == "html":
            html_on = value.strip().lower() == "true"
    return sep, tags_col, html_on, body_start, problems


# An .apkg's collection, unpacked. Its notes are text (media are other files in the zip), so this
# holds ~100k notes; a deck over it is refused before it fills the memory or the disk (a zip or
# zstd bomb: a few hundred kB that unpack to gigabytes).
MAX_COLLECTION_BYTES = 128 * 1024 * 1024
CHUNK = 1024 * 1024
COLLECTIONS = ("collection.anki21b", "collection.anki21", "collection.anki2")  # the newest first


def _apkg(path: Path) -> tuple[list[Row], list[str]]:
    """An Anki deck package: a zip holding the collection as SQLite (`collection.anki21`, or
    `collection.anki21b` compressed with zstd by Anki 2.1.50+). The first two fields of each note
    are the question and the answer; the note's tags become tags."""
    where = str(path)
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "collection.sqlite"
        try:
            name = _unpack_collection(path, db_path)
            notes = _notes(db_path)
        except _DeckError as e:
            return [], [f"{where}:1: {e}"]
    rows, problems = [], []
    for n, (nid, flds, tags) in enumerate(notes, 1):
        label = f"note {n} (id {nid})"
        fields = flds.split("\x1f") if isinstance(flds, str) else []
        if len(fields) < 2:
            problems.append(f"{where}:{label}: a note needs a front and a back field (as text)")
            continue
        data = {"question": _strip_html(fields[0]), "answer": _strip_html(fields[1]),
                "tags": tags if isinstance(tags, str) else ""}
        before = len(problems)
        r = _row(data, n, where, problems)
        problems[before:] = [p.replace(f"{where}:{n}:", f"{where}:{label}:") for p in problems[before:]]
        if r is not None:
            rows.append(r)
    if len(notes) == 1 and "update" in str(notes[0][1]).lower() and not name.endswith("21b"):
        return [], [f"{where}:1: this deck was exported for a newer Anki only; re-export with "
                    "'Support older Anki versions' checked"]
    return rows, problems


class _DeckError(Exception):
    """What is wrong with an .apkg (reported as a problem of its line 1)."""


def _unpack_collection(path: Path, dest: Path) -> str:
    """Write the deck's collection (unpacked, at most MAX_COLLECTION_BYTES) to dest; its name."""
    import zstandard

    with open(dest, "wb") as out:
        try:
            with zipfile.ZipFile(path) as z:
                info = next((z.getinfo(n) for n in COLLECTIONS if n in z.namelist()), None)
                if info is None:
                    raise _DeckError("no Anki collection inside (is it an .apkg export?)")
                with z.open(info) as member:
                    stream = member
                    if info.filename.endswith("21b"):
                        stream = zstandard.ZstdDecompressor().stream_reader(member)
                    _copy_bounded(stream, out, info.file_size)
        except (zipfile.BadZipFile, zipfile.LargeZipFile):
            raise _DeckError("not a zip file, or a damaged one (an .apkg is a zip)") from None
        except (zlib.error, zstandard.ZstdError, EOFError, OSError) as e:  # OSError: a seek before the start
            raise _DeckError(f"the Anki collection inside is damaged ({e})") from None
        except (NotImplementedError, RuntimeError) as e:  # a compression method zipfile lacks; encrypted
            raise _DeckError(f"the Anki collection inside cannot be unpacked ({e})") from None
    return info.filename


def _copy_bounded(stream, out, declared: int) -> None:
    """Copy in chunks, refusing a collection over MAX_COLLECTION_BYTES: by the size the zip declares
    (zipfile never unpacks more than that), and as a zstd stream unpacks (it need declare none)."""
    if declared > MAX_COLLECTION_BYTES:
        raise _too_big()
    while chunk := stream.read(CHUNK):
        if out.tell() + len(chunk) > MAX_COLLECTION_BYTES:
            raise _too_big()
        try:
            out.write(chunk)
        except OSError as e:  # not the deck's fault, unlike the OSErrors of reading it
            raise StoreError(f"Cannot write the unpacked Anki collection to {out.name} ({e.strerror}).",
                             "Free space in the temp folder (or point TMPDIR elsewhere) and import again.") from None


def _too_big() -> _DeckError:
    return _DeckError(f"the Anki collection unpacks to more than {MAX_COLLECTION_BYTES // 1024 // 1024} MB "
                      "(a damaged deck, or one made to fill the disk)")


def _notes(db_path: Path) -> list[tuple]:
    """(id, flds, tags) of every note. The collection is someone else's SQLite file: `notes` must be
    a plain table without computed columns, as a view or a generated column could compute rows or
    values without end."""
    try:
        db = sqlite3.connect(db_path)
    except sqlite3.Error as e:
        raise _DeckError(f"the Anki collection cannot be read ({e})") from None
    try:
        sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'notes'").fetchone()
        computed = db.execute("SELECT count(*) FROM pragma_table_xinfo('notes') WHERE hidden != 0").fetchone()[0]
        if not sql or not str(sql[0]).upper().startswith("CREATE TABLE") or computed:
            raise _DeckError("the Anki collection has no table of notes")
        return db.execute("SELECT id, flds, tags FROM notes ORDER BY id").fetchall()
    except sqlite3.Error as e:
        raise _DeckError(f"the Anki collection cannot be read ({e})") from None
    finally:
        db.close()


# --- writing a pack -------------------------------------------------------------------------

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "pack"


def guess_language(rows: list[Row]) -> str:
    text = "".join(r.question + r.answer for r in rows[:50])
    cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
    return "zh" if cjk > 0.2 * max(1, len(re.findall(r"\w", text))) else "en"


def render_pack(rows: list[Row], name: str, *, language: str, title: str | None = None,
                draft=None, progress=None) -> tuple[str, int]:
    """The pack as corpus Markdown, and how many items got drafted key points. `draft(question,
    answer)` drafts key points (the model); without it the answer's own sentences are used. Either
    way such items are marked `status: draft` for a person to review."""
    from bot.evaluation.keypoints import render_front_matter, sentence_points

    from bot.corpus import ID_RE

    prefix = _slug(name)
    parts = [render_front_matter({"name": name, "title": title or name, "language": language,
                                  "domain": "imported"}), ""]
    drafted = 0
    seen: set[str] = set()
    for n, r in enumerate(rows, 1):
        iid = r.id.lower() if r.id and ID_RE.match(r.id.lower()) else f"{prefix}-{n:03d}"
        while iid in seen:
            iid += "-b"
        seen.add(iid)
        points, status = r.key_points, ""
        if not points:
            points = draft(r.question, r.answer) if draft else sentence_points(r.answer)
            points = [" ".join(p.split()) for p in points if p.strip()]  # a drafted point may span lines
            points, status = points[:8], "draft"
            drafted += 1
        lines = [f"## {iid}: {r.question}", f"tags: {', '.join(r.tags) or prefix}", f"difficulty: {r.difficulty}"]
        if status:
            lines.append(f"status: {status}")
        lines += ["", "### Answer", _unheaded(r.answer.strip()), "", "### Key points", *[f"- {p}" for p in points], ""]
        parts.append("\n".join(lines))
        if progress:
            progress(n, len(rows))
    return "\n".join(parts), drafted


def _unheaded(answer: str) -> str:
    """An answer line starting `## ` or `### ` would start an item or a section of the pack: indented."""
    return re.sub(r"(?m)^(?=###? )", " ", answer)


def write_pack(text: str, dest: Path, *, replace: bool = False) -> Path:
    """Check the rendered pack parses, then write it atomically: a failure leaves nothing behind."""
    from bot.corpus import check_files

    if dest.exists() and not replace:
        raise UsageError(f"{dest} already exists.", "Pick another --pack name, or pass --replace to overwrite it.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        staged = Path(tmp) / dest.name
        staged.write_text(text, encoding="utf-8")
        _, problems = check_files([staged])
        if problems:
            raise CorpusError([p.replace(str(staged), str(dest)) for p in problems],
                              "This is a bug in the importer: report it with the input file; nothing was written.")
        staged.replace(dest)
    return dest
