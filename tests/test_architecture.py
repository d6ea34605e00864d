"""The house is layered with no cycles (README, "How the code is laid out"): a module imports only
from its own layer or below, and the core never imports a face."""
import ast
import re
from functools import lru_cache

import pytest

from tests.conftest import REPO

LAYERS = [
    # db: the history database layer (SQLite or PostgreSQL); schema: its tables, as migration steps
    {"errors", "embeddings", "db", "schema"},
    {"config", "corpus", "matching"},
    {"llm", "index", "judge"},
    {"grading"},
    {"sessions", "transcripts", "reports", "evaluation", "coach", "followups", "audit", "importers"},
    {"service"},  # the application layer every face calls
    {"slack", "web"},  # the faces over the service
    {"cli", "__main__"},
]
LAYER = {name: n for n, names in enumerate(LAYERS) for name in names}
FACES = {"slack", "web", "cli", "__main__"}


@lru_cache(maxsize=None)
def _imports() -> dict[str, set[str]]:
    """Top-level bot module -> the top-level bot modules it imports (at any depth of the file)."""
    out: dict[str, set[str]] = {}
    for path in (REPO / "bot").rglob("*.py"):
        top = path.relative_to(REPO / "bot").parts[0].removesuffix(".py")
        if top == "__init__":
            continue
        deps = out.setdefault(top, set())
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and (node.module == "bot" or node.module.startswith("bot.")):
                parts = node.module.split(".")
                deps.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
            elif isinstance(node, ast.Import):
                deps.update(a.name.split(".")[1] for a in node.names if re.match(r"bot\.\w", a.name))
        deps.discard(top)
    return out


def _module_name(path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=None)
def _file_imports() -> dict[str, frozenset[str]]:
    """Every module of bot/ (a file: bot.grading.grader, bot.slack) -> the modules of bot/ it
    imports, wherever in the file (inside a function too: that only delays the same dependency).
    `from bot.x import y` is bot.x.y when y is a module, else bot.x."""
    files = {_module_name(p): p for p in (REPO / "bot").rglob("*.py")}
    out: dict[str, set[str]] = {}
    for mod, path in files.items():
        deps = out.setdefault(mod, set())
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{mod}: a relative import; bot/ imports by absolute names")
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "bot":
                deps.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module
                            for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.split(".")[0] == "bot")
        deps.discard(mod)
        unknown = {d for d in deps if d not in files and d != "bot"}
        assert not unknown, f"{mod} imports modules that do not exist: {unknown}"
    return {mod: frozenset(deps) for mod, deps in out.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph (its modules in order, the first repeated at the end), or None."""
    done, stack = set(), []

    def visit(node):
        if node in stack:
            return stack[stack.index(node):] + [node]
        if node in done:
            return None
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if found := visit(dep):
                return found
        stack.pop()
        done.add(node)
        return None

    for mod in sorted(graph):
        if found := visit(mod):
            return found
    return None


def test_every_module_has_a_layer():
    assert set(_imports()) - set(LAYER) == set()


def test_imports_go_down_the_layers_and_the_core_never_imports_a_face():
    wrong = [f"{mod} (layer {LAYER[mod]}) imports {dep} (layer {LAYER[dep]})"
             for mod, deps in _imports().items() for dep in deps if dep in LAYER and LAYER[dep] > LAYER[mod]]
    assert wrong == []
    core = {m for m in _imports() if m not in FACES}
    assert all(not (_imports()[m] & FACES) for m in core)


def test_the_database_layer_imports_only_the_errors():
    """Everything that keeps history goes through bot.db; it must stay importable by all of them."""
    assert _imports()["db"] <= {"errors"}


def test_no_import_cycles_between_modules():
    graph = _imports()
    seen, stack = set(), []

    def visit(node):
        if node in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(node):] + [node]))
        if node in seen:
            return
        stack.append(node)
        for dep in graph.get(node, ()):
            visit(dep)
        stack.pop()
        seen.add(node)

    for mod in graph:
        visit(mod)


def test_no_import_cycles_between_files():
    """Inside packages too (grading/grader.py <-> grading/version.py was one), counting imports
    inside functions: a delayed import hides a cycle from the interpreter, not from a reader."""
    found = _cycle(_file_imports())
    assert found is None, "import cycle: " + " -> ".join(found)


def test_the_cycle_check_finds_a_cycle_inside_a_package():
    graph = dict(_file_imports())
    assert "bot.grading.version" in graph["bot.grading.grader"]
    graph["bot.grading.version"] = graph["bot.grading.version"] | {"bot.grading.grader"}
    assert _cycle(graph) == ["bot.grading.grader", "bot.grading.version", "bot.grading.grader"]


def test_every_table_is_made_in_the_schema_module():
    """One home for the schema (bot/schema.py's migrations): a table a module creates for itself
    is missed by export and import, and by whoever reads the schema there."""
    allowed = {"bot.schema", "bot.db"}  # db: the schema_version table that migrate() itself keeps
    ddl = re.compile(r"\b(CREATE\s+(TABLE|INDEX|VIEW)|ALTER\s+TABLE|DROP\s+TABLE)\b", re.I)
    found = []
    for path in (REPO / "bot").rglob("*.py"):
        if _module_name(path) in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and ddl.search(node.value):
                # importers.py reads the first word of an Anki file's table definition: not DDL of ours
                if not (_module_name(path) == "bot.importers" and node.value == "CREATE TABLE"):
                    found.append(f"{_module_name(path)}:{node.lineno}")
    assert found == []


FACE_PACKAGES = ("bot.slack", "bot.cli", "bot.web", "bot.__main__")
INTERNALS = ("bot.sessions", "bot.coach", "bot.db", "bot.grading")


def _under(module: str, packages) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_faces_import_no_internals_of_the_core():
    """A face (Slack, the terminal, the web page) turns events into service calls and results
    into its output: what it needs of sessions, the coach, the database or the grading it gets
    from bot.service (the types it shows are re-exported there), so that the service stays the
    one door and what a face may do is written in one file."""
    wrong = sorted(f"{mod} imports {dep}" for mod, deps in _file_imports().items() if _under(mod, FACE_PACKAGES)
                   for dep in deps if _under(dep, INTERNALS))
    assert wrong == []


def test_the_database_layer_knows_nothing_of_the_grading():
    assert not {d for d in _file_imports()["bot.db"] if _under(d, ("bot.grading",))}


def test_the_session_store_knows_nothing_of_the_grading():
    """The service grades a saved answer and hands the store its grade as JSON (bot.sessions)."""
    assert not {d for d in _file_imports()["bot.sessions"] if _under(d, ("bot.grading",))}


def test_faces_reach_sessions_only_through_the_service():
    """No face reads the service's session store (`.engine`) or builds one: what a face may do to
    a session is the service's methods, so the conversation (question, answer, grade, follow-up,
    next) runs the same in the terminal, Slack and the web page."""
    wrong = []
    for path in (REPO / "bot").rglob("*.py"):
        if not _under(_module_name(path), FACE_PACKAGES):
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("engine", "_engine"):
                wrong.append(f"{_module_name(path)}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.Name) and node.id in ("SessionEngine", "Store", "Coach"):
                wrong.append(f"{_module_name(path)}:{node.lineno} {node.id}")
    assert wrong == []
