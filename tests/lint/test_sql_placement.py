"""SQL stays in the repositories: a SQLAlchemy statement (`select`, `insert`, `update`,
`delete`, `text`) is built only in `repository.py`, `queries.py`, a `repository/` package or
`migrations/`, so a reader finds every statement of a service in one place.

The check reads the source with `ast`, so it sees calls of those names imported from
`sqlalchemy` (under any alias, or through a module such as `sa.select`), and not a dict's
`.update(...)` nor a function of the same name defined elsewhere.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SQL_FUNCTIONS = frozenset({"select", "insert", "update", "delete", "text"})
SQL_FILES = frozenset({"repository.py", "queries.py"})
SQL_FOLDERS = frozenset({"repository", "migrations"})

# The kit's own plumbing: the outbox's insert/relay/prune and the consumer's processed-event
# claim are steps of the Outbox and Consumer classes, against tables the kit defines itself;
# split out, they would be a repository of one caller. (The kit's database and schema set-up
# statements live in wee5_kit/queries.py.)
KIT_PLUMBING = frozenset({"libs/kit/src/wee5_kit/events.py"})


@dataclass(frozen=True)
class SqlCall:
    path: str
    line: int
    name: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.name}("


def _is_sqlalchemy(module: str | None) -> bool:
    return module is not None and (module == "sqlalchemy" or module.startswith("sqlalchemy."))


def sql_calls(source: str, path: str = "<snippet>") -> list[SqlCall]:
    """Every call in `source` of select/insert/update/delete/text imported from sqlalchemy."""
    tree = ast.parse(source, filename=path)
    functions: dict[str, str] = {}  # local name -> SQL function, e.g. pg_insert -> insert
    modules: set[str] = set()  # local names of sqlalchemy modules, e.g. sa, postgresql
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_sqlalchemy(alias.name):
                    modules.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and _is_sqlalchemy(node.module):
            for alias in node.names:
                if alias.name in SQL_FUNCTIONS:
                    functions[alias.asname or alias.name] = alias.name
                else:  # a submodule (`from sqlalchemy.dialects import postgresql`) or a class
                    modules.add(alias.asname or alias.name)
    calls: list[SqlCall] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = node.func
        if isinstance(called, ast.Name) and called.id in functions:
            calls.append(SqlCall(path, node.lineno, functions[called.id]))
        elif (
            isinstance(called, ast.Attribute)
            and called.attr in SQL_FUNCTIONS
            and _module_root(called.value) in modules
        ):
            calls.append(SqlCall(path, node.lineno, called.attr))
    return sorted(calls, key=lambda call: call.line)


def _module_root(node: ast.expr) -> str | None:
    """`sa` for `sa.select`, `sqlalchemy` for `sqlalchemy.dialects.postgresql.insert`."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def may_hold_sql(relative: str, name: str) -> bool:
    """Whether the file at `relative` (a path from the repository root) may build `name`."""
    path = Path(relative)
    if path.name in SQL_FILES or SQL_FOLDERS & set(path.parent.parts):
        return True
    # Server defaults such as text("now()") are part of a table's definition.
    return path.name == "models.py" and name == "text"


def misplaced_sql(root: Path, allowed: frozenset[str] = frozenset()) -> list[SqlCall]:
    """SQL built outside its homes in services/*/src and libs/kit/src, except `allowed` files."""
    sources = [*root.glob("services/*/src/**/*.py"), *root.glob("libs/kit/src/**/*.py")]
    found: list[SqlCall] = []
    for file in sorted(sources):
        relative = file.relative_to(root).as_posix()
        if relative in allowed:
            continue
        found += [
            call
            for call in sql_calls(file.read_text(encoding="utf-8"), relative)
            if not may_hold_sql(relative, call.name)
        ]
    return found


def test_sql_is_built_only_in_repositories_queries_and_migrations() -> None:
    misplaced = misplaced_sql(ROOT, KIT_PLUMBING)
    assert not misplaced, "SQL outside repository.py/queries.py/migrations:\n" + "\n".join(
        str(call) for call in misplaced
    )


def test_the_allowlists_name_files_that_exist() -> None:
    # A file moved or renamed must leave the allowlist too, or the list hides nothing real.
    missing = sorted(name for name in KIT_PLUMBING if not (ROOT / name).is_file())
    assert not missing, f"allowlisted files that do not exist: {missing}"


SNIPPET = """\
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert


def update(values):  # not SQLAlchemy's
    return values


async def award(session, table, totals):
    totals.update({"xp": 1})
    update(totals)
    await session.execute(select(table))
    await session.execute(sql_text("SELECT 1"))
    await session.execute(pg_insert(table).values(xp=func.now()))
    await session.execute(sa.delete(table))
    await session.execute(postgresql.insert(table))
    await session.execute(sa.sql.expression.update(table))
"""
SNIPPET_CALLS = [
    (15, "select"),
    (16, "text"),
    (17, "insert"),
    (18, "delete"),
    (19, "insert"),
    (20, "update"),
]


def test_the_checker_finds_sqlalchemy_calls_under_any_alias_and_nothing_else() -> None:
    assert [(call.line, call.name) for call in sql_calls(SNIPPET)] == SNIPPET_CALLS


def test_the_checker_reports_sql_in_a_service_module_with_file_and_line(tmp_path: Path) -> None:
    for relative in (
        "services/xp/src/wee5_xp/service.py",
        "services/xp/src/wee5_xp/repository.py",
        "services/xp/src/wee5_xp/queries.py",
        "services/xp/src/wee5_xp/repository/members.py",
        "services/xp/src/wee5_xp/migrations/versions/0001_members.py",
        "libs/kit/src/wee5_kit/outbox.py",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(SNIPPET, encoding="utf-8")
    models = tmp_path / "services/xp/src/wee5_xp/models.py"
    models.write_text(
        "from sqlalchemy import select, text\ncreated_at = text('now()')\nranked = select(1)\n",
        encoding="utf-8",
    )

    reported = [str(call) for call in misplaced_sql(tmp_path)]

    assert reported == [
        *(f"libs/kit/src/wee5_kit/outbox.py:{line}: {name}(" for line, name in SNIPPET_CALLS),
        "services/xp/src/wee5_xp/models.py:3: select(",
        *(f"services/xp/src/wee5_xp/service.py:{line}: {name}(" for line, name in SNIPPET_CALLS),
    ]
    assert misplaced_sql(tmp_path, frozenset({"services/xp/src/wee5_xp/service.py"})) == [
        call for call in misplaced_sql(tmp_path) if "service.py" not in call.path
    ]
