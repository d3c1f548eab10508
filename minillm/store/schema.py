"""The board's tables (SQLAlchemy Core) and the schema version.

``schema_version`` holds one row: the version of the tables' layout that the database has.
On start `ensure_schema` creates the tables of an empty database and writes
`SCHEMA_VERSION`; a database of an older version is brought up to date by `MIGRATIONS`
(one function per step, in one transaction); a database of a newer version than this code
knows is refused with a sentence saying so, before anything in it is touched.

Times are stored in UTC. Run ids never come back after a run is deleted (``AUTOINCREMENT``
on SQLite, an identity column on PostgreSQL), so a stale teacher page that hides run 12
never hides a newer run that happens to get id 12.
"""

from __future__ import annotations

from typing import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from minillm.store.errors import BoardError

SCHEMA_VERSION = 1

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),  # always "board"
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
)

classes = sa.Table(
    "classes",
    metadata,
    sa.Column("code", sa.String(40), primary_key=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("closed", sa.Boolean, nullable=False, default=False),
)

members = sa.Table(
    "members",
    metadata,
    sa.Column(
        "class_code",
        sa.String(40),
        sa.ForeignKey("classes.code", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("session_hash", sa.String(64), primary_key=True),
    sa.Column("nickname", sa.Text, nullable=False),
    sa.Column("nickname_key", sa.Text, nullable=False),  # NFKC + casefold: "Sam" == "SAM"
    sa.Column("joined", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("class_code", "nickname_key", name="uq_members_nickname"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column(
        "class_code",
        sa.String(40),
        sa.ForeignKey("classes.code", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("nickname", sa.Text, nullable=False),
    sa.Column("settings", sa.Text, nullable=False),  # JSON
    sa.Column("parameters", sa.Integer, nullable=False),
    sa.Column("final_loss", sa.Double, nullable=False),
    sa.Column("heldout_loss", sa.Double, nullable=True),
    sa.Column("floor", sa.Double, nullable=False),
    sa.Column("bits_per_char", sa.Double, nullable=True),
    sa.Column("sample", sa.Text, nullable=False),
    sa.Column("model", sa.LargeBinary, nullable=True),
    sa.Column("model_size", sa.Integer, nullable=False, default=0),
    sa.Column("hidden", sa.Boolean, nullable=False, default=False),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("session_hash", sa.String(64), nullable=False),
    sa.Index("ix_runs_class", "class_code", "id"),
    sa.Index("ix_runs_session", "session_hash", "created"),
    sqlite_autoincrement=True,
)

# version n -> n + 1, each given a connection inside the start-up transaction
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


def read_version(conn: Connection) -> int | None:
    """The database's schema version, or None for a database without the board's tables."""
    if not sa.inspect(conn).has_table("schema_version"):
        return None
    row = conn.execute(
        sa.select(schema_version.c.version).where(schema_version.c.name == "board")
    ).first()
    return None if row is None else int(row.version)


def ensure_schema(conn: Connection, now) -> int:
    """Create or update the tables (inside the caller's transaction); the version in force."""
    found = read_version(conn)
    if found is not None and found > SCHEMA_VERSION:
        raise BoardError(
            f"The class board's database was made by a newer MiniLLM Lab (schema version "
            f"{found}; this one knows versions up to {SCHEMA_VERSION}). Update the app on "
            "this server, or point MINILLM_DATABASE_URL at another database."
        )
    if found is None:
        metadata.create_all(conn)
        conn.execute(
            sa.insert(schema_version).values(name="board", version=SCHEMA_VERSION, updated=now)
        )
        return SCHEMA_VERSION
    version = found
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise BoardError(
                f"The class board's database has schema version {version}, which this "
                "MiniLLM Lab cannot update. Point MINILLM_DATABASE_URL at a new database."
            )
        step(conn)
        version += 1
    if version != found:
        conn.execute(
            sa.update(schema_version)
            .where(schema_version.c.name == "board")
            .values(version=version, updated=now)
        )
    return version
