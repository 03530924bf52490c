"""The schema as code: migrations applied by one command, and the live database compared
against the models, so a server never runs on a database that lacks what it needs."""

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from sqlalchemy import CheckConstraint, Connection, Engine, MetaData, Table, inspect, text
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.schema import AddConstraint

from pesan import probes as _probes  # noqa: F401

# Every model module, imported so that the metadata is complete.
from pesan.accounts import models as _accounts  # noqa: F401
from pesan.admin import models as _admin  # noqa: F401
from pesan.bookings import models as _bookings  # noqa: F401
from pesan.chat import models as _chat  # noqa: F401
from pesan.db import NAMING, Base
from pesan.live import models as _live  # noqa: F401
from pesan.providers import models as _providers  # noqa: F401

metadata: MetaData = Base.metadata
MIGRATIONS = Path(__file__).parent / "migrations"
FIX_COMMAND = "pesan db upgrade"
_PG_LOCK_KEY = 0x7065_7361  # "pesa": one key for every pesan process on this database


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


@dataclass
class SchemaState:
    current: str | None
    head: str
    differences: list[str] = field(default_factory=list)

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def ok(self) -> bool:
        return self.at_head and not self.differences

    def explain(self) -> str:
        """What is wrong and the command that fixes it, for people."""
        if self.ok:
            return f"schema at revision {self.head}"
        lines = []
        if self.current is None:
            lines.append("the database has no pesan schema yet")
        elif not self.at_head:
            lines.append(f"the schema is at revision {self.current}; this pesan needs {self.head}")
        lines.extend(self.differences)
        return "; ".join(lines) + f". Fix: run `{FIX_COMMAND}`"


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def inspect_schema(engine: Engine) -> SchemaState:
    with engine.connect() as connection:
        current = current_revision(connection)
        differences = _differences(connection)
    return SchemaState(current=current, head=head_revision(), differences=differences)


def _differences(connection: Connection) -> list[str]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": False, "compare_server_default": False}
    )
    diffs = []
    for diff in compare_metadata(context, metadata):
        diffs.extend(diff if isinstance(diff, list) else [diff])
    # A missing table's indexes and keys go without saying.
    missing = {d[1].name for d in diffs if d[0] == "add_table"}
    tables = sorted(f"table '{name}' is missing" for name in missing)
    rest = sorted(
        {_describe(d) for d in diffs if d[0] != "add_table" and _table_of(d) not in missing}
    )
    return tables + rest + _constraint_differences(connection, skip=missing)


# Alembic's comparison does not look at CHECK and exclusion constraints, and a word added to
# a list (a new booking status) without a migration would pass every check and fail at run
# time. So they are compared here, by name and by what they say: the quoted words, numbers and
# column names in their text (the databases rewrite the rest: casts, parentheses, BETWEEN).
_SQL_TEXT = """alter add table constraint check and or not in any array between is null true
false text character varying integer bigint numeric boolean timestamp with without time zone
exclude using where"""
_SQL_WORDS = frozenset(_SQL_TEXT.split())


@dataclass(frozen=True)
class ConstraintDrift:
    """A CHECK or exclusion constraint that is not what the code says."""

    kind: str  # "check constraint" or "exclusion constraint"
    table: str
    name: str
    problem: str  # "missing", "extra", or how it differs

    def describe(self) -> str:
        where = f"{self.kind} '{self.name}' on '{self.table}'"
        if self.problem == "missing":
            return f"{where} is missing"
        if self.problem == "extra":
            return f"{where} is not one of pesan's"
        return f"{where} differs from the code: {self.problem}"


def _constraint_differences(connection: Connection, skip: Collection[str]) -> list[str]:
    return [d.describe() for d in constraint_drift(connection, skip)]


def constraint_drift(connection: Connection, skip: Collection[str] = ()) -> list[ConstraintDrift]:
    inspector = inspect(connection)
    present = set(inspector.get_table_names())
    out = []
    for table in metadata.sorted_tables:
        if table.name in skip or table.name not in present:
            continue
        expected = {
            str(c.name): _fingerprint(str(c.sqltext))
            for c in table.constraints
            if isinstance(c, CheckConstraint)
        }
        actual = {
            str(c["name"]): _fingerprint(c["sqltext"])
            for c in inspector.get_check_constraints(table.name)
            if c.get("name")
        }
        out.extend(_compare("check constraint", table.name, expected, actual))
        if connection.dialect.name == "postgresql":
            out.extend(
                _compare(
                    "exclusion constraint",
                    table.name,
                    _expected_exclusions(connection, table),
                    _actual_exclusions(connection, table.name),
                )
            )
    return out


def _compare(
    kind: str, table: str, expected: dict[str, "_Fingerprint"], actual: dict[str, "_Fingerprint"]
) -> list[ConstraintDrift]:
    out = [ConstraintDrift(kind, table, n, "missing") for n in sorted(expected.keys() - actual)]
    out += [ConstraintDrift(kind, table, n, "extra") for n in sorted(actual.keys() - expected)]
    for name in sorted(expected.keys() & actual.keys()):
        want, have = expected[name], actual[name]
        if want != have:
            out.append(ConstraintDrift(kind, table, name, want.explain(have)))
    return out


@dataclass(frozen=True)
class _Fingerprint:
    words: frozenset[str]
    names: frozenset[str]

    def explain(self, database: "_Fingerprint") -> str:
        parts = []
        if self.words - database.words:
            parts.append("the database lacks " + ", ".join(sorted(self.words - database.words)))
        if database.words - self.words:
            parts.append("the code lacks " + ", ".join(sorted(database.words - self.words)))
        if self.names != database.names:
            parts.append("it names other columns")
        return "; ".join(parts)


def _fingerprint(sql: str) -> _Fingerprint:
    literals = re.findall(r"'((?:[^']|'')*)'", sql)
    rest = re.sub(r"'(?:[^']|'')*'", " ", sql).lower()
    rest = re.sub(r"::[a-z ]+(\(\d+\))?(\[\])?", " ", rest)  # PostgreSQL's casts
    numbers = re.findall(r"\b\d+\b", rest)
    names = {w for w in re.findall(r"\b[a-z_][a-z0-9_]*\b", rest) if w not in _SQL_WORDS}
    return _Fingerprint(frozenset(literals) | frozenset(numbers), frozenset(names))


def _expected_exclusions(connection: Connection, table: Table) -> dict[str, _Fingerprint]:
    out = {}
    for constraint in table.constraints:
        if isinstance(constraint, ExcludeConstraint):
            ddl = str(AddConstraint(constraint).compile(dialect=connection.dialect))
            out[str(constraint.name)] = _fingerprint(ddl[ddl.index("EXCLUDE") :])
    return out


def _actual_exclusions(connection: Connection, table: str) -> dict[str, _Fingerprint]:
    rows = connection.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'x' AND conrelid = CAST(:t AS regclass)"
        ),
        {"t": table},
    )
    return {name: _fingerprint(definition) for name, definition in rows}


def _table_of(diff: Any) -> str | None:
    item = diff[1]
    if isinstance(item, str) or item is None:
        return diff[2] if len(diff) > 2 and isinstance(diff[2], str) else None
    table = getattr(item, "table", None)
    if table is None:
        table = getattr(item, "parent", None)
    return getattr(table, "name", None)


def _describe(diff: Any) -> str:
    kind = diff[0]
    if kind == "add_table":
        return f"table '{diff[1].name}' is missing"
    if kind == "remove_table":
        return f"table '{diff[1].name}' is not one of pesan's"
    if kind == "add_column":
        return f"column '{diff[2]}.{diff[3].name}' is missing"
    if kind == "remove_column":
        return f"column '{diff[2]}.{diff[3].name}' is not one of pesan's"
    if kind == "add_index":
        return f"index '{diff[1].name}' on '{diff[1].table.name}' is missing"
    if kind == "remove_index":
        return f"index '{diff[1].name}' on '{diff[1].table.name}' is not one of pesan's"
    if kind == "add_constraint":
        return f"constraint '{diff[1].name}' on '{diff[1].table.name}' is missing"
    if kind == "remove_constraint":
        return f"constraint '{diff[1].name}' on '{diff[1].table.name}' is not one of pesan's"
    if kind == "add_fk":
        columns = ", ".join(c.name for c in diff[1].columns)
        return f"foreign key on '{diff[1].parent.name}' ({columns}) is missing"
    if kind == "remove_fk":
        return f"foreign key '{diff[1].name}' on '{diff[1].parent.name}' is not one of pesan's"
    if kind == "modify_nullable":
        return f"column '{diff[2]}.{diff[3]}' nullability differs"
    return f"{kind}: {diff[1:]!r}"


def upgrade(engine: Engine, *, repair: bool = True) -> list[str]:
    """Apply every migration not yet applied, under a lock other pesan processes respect.

    With `repair`, tables that the head revision defines but that are missing outright
    (dropped by hand) are recreated from the models, and CHECK and exclusion constraints that
    are missing or differ are put back as the code has them; the schema tests keep the models
    and the migrations identical, so this restores exactly what the migrations made. Returns
    what it repaired, in sentences.
    """
    repaired: list[str] = []
    with engine.execution_options(pesan_write=True).connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _sqlite_foreign_keys(connection, on=False)
        try:
            with connection.begin():
                if not sqlite:
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY}
                    )
                command.upgrade(alembic_config(connection), "head")
                if repair:
                    existing = set(inspect(connection).get_table_names())
                    missing = [t for t in metadata.sorted_tables if t.name not in existing]
                    for table in missing:
                        table.create(connection)
                        repaired.append(f"recreated missing table '{table.name}'")
                    if missing and not sqlite:
                        _restore_foreign_keys(connection, {t.name for t in missing})
                    repaired += _repair_constraints(connection)
                if sqlite:
                    _check_foreign_keys(connection)
        finally:
            if sqlite:
                _sqlite_foreign_keys(connection, on=True)
    return repaired


def _repair_constraints(connection: Connection) -> list[str]:
    """Put CHECK and exclusion constraints back as the code has them. PostgreSQL alters them
    in place; SQLite cannot, so the table is rebuilt from the model with its rows. Either
    fails (and changes nothing) if a row breaks the constraint: a person must look at it."""
    drifts = [d for d in constraint_drift(connection) if d.problem != "extra"]
    if connection.dialect.name == "sqlite":
        operations = Operations(MigrationContext.configure(connection))
        for name in sorted({d.table for d in drifts}):
            with operations.batch_alter_table(
                name, copy_from=_sqlite_table(name), recreate="always"
            ):
                pass
            for index in metadata.tables[name].indexes:  # the rebuild keeps only some
                index.create(connection, checkfirst=True)
    else:
        for drift in drifts:
            table = metadata.tables[drift.table]
            constraint = next(c for c in table.constraints if c.name == drift.name)
            if drift.problem != "missing":
                connection.execute(
                    text(f'ALTER TABLE {drift.table} DROP CONSTRAINT "{drift.name}"')
                )
            connection.execute(AddConstraint(constraint))
    return [f"restored {d.kind} '{d.name}' on '{d.table}'" for d in drifts]


def _sqlite_table(name: str) -> Table:
    """The model's table as SQLite has it: without PostgreSQL's exclusion constraints."""
    table = metadata.tables[name].to_metadata(MetaData(naming_convention=NAMING))
    for constraint in [c for c in table.constraints if isinstance(c, ExcludeConstraint)]:
        table.constraints.discard(constraint)
    return table


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    """SQLite rebuilds a table to change it (a migration's batch mode: copy, drop, rename).
    With foreign keys enforced, dropping the old table would delete or refuse the rows that
    refer to it, so they are off while migrating (SQLite only takes this outside a
    transaction) and every reference is checked before the commit instead."""
    raw = connection.connection.dbapi_connection
    assert raw is not None
    raw.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        tables = sorted({str(row[0]) for row in broken})
        raise RuntimeError(
            f"the migration would leave rows referring to nothing in {', '.join(tables)}"
        )


def _restore_foreign_keys(connection: Connection, recreated: set[str]) -> None:
    """PostgreSQL's `DROP TABLE ... CASCADE` also dropped the other tables' foreign keys to it."""
    inspector = inspect(connection)
    for table in metadata.sorted_tables:
        if table.name in recreated:
            continue
        present = {fk["name"] for fk in inspector.get_foreign_keys(table.name)}
        for fk in table.foreign_key_constraints:
            if fk.referred_table.name in recreated and fk.name not in present:
                connection.execute(AddConstraint(fk))


class SchemaNotReady(RuntimeError):
    pass


def ensure_ready(engine: Engine, *, embedded: bool) -> SchemaState:
    """At start-up: upgrade the embedded database; refuse any schema that is not right."""
    if embedded:
        upgrade(engine, repair=False)
    state = inspect_schema(engine)
    if not state.ok:
        raise SchemaNotReady(f"pesan cannot start: {state.explain()}")
    return state
