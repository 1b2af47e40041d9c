"""The database: engine, sessions, schema version check, upgrades.

:class:`Database` holds one SQLAlchemy engine and a session factory. :func:`session_scope`
is the one way code opens a transaction: it commits on success, rolls back on any error, and
turns SQLAlchemy's errors into :class:`~forexgrid.exceptions.StorageError` messages that name
the database (SQLite file, or URL with its password hidden).

Schema lifecycle (decided here, documented in ``docs/storage.md``):

- A *new* database (no table at all; a new SQLite file is created on first use, with its
  folder) is created and upgraded to the current schema automatically on first use, and the
  default regimes are seeded: a fresh workspace needs no command.
- An *existing* forexgrid database at an older schema revision is never upgraded behind the
  user's back (its data may deserve a backup first): every use raises a StorageError naming
  the exact command, ``forexgrid db upgrade``.
- A database at a revision this forexgrid does not know (written by a newer forexgrid), or
  one that has tables but no ``alembic_version`` (not a forexgrid database), is refused.

SQLite specifics: WAL journal (readers never block the writer), ``busy_timeout`` (a locked
database is waited for, not failed at once), foreign keys on, and every transaction begins
with ``BEGIN IMMEDIATE``: the write lock is taken when the transaction starts, so a
read-then-write transaction (claiming a queue, validating then recording a pause request)
is serialised against other processes and waits through ``busy_timeout`` instead of failing
with ``SQLITE_BUSY_SNAPSHOT``. Keep ``session_scope`` blocks short: while one is open, other
processes' transactions wait. A long read (a checkpoint) uses
``session_scope(read_only=True)``, which begins ``DEFERRED``: it reads one WAL snapshot and
others write meanwhile. On PostgreSQL ``busy_timeout`` becomes ``lock_timeout`` and the
connect timeout.
"""

from __future__ import annotations

import functools
import logging
import math
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import Connection, create_engine, event, inspect, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from forexgrid._atomic import describe_file_type
from forexgrid.config import Settings, load_config
from forexgrid.exceptions import ConfigError, StorageError, TransientStorageError, quote_input
from forexgrid.storage._common import PG_LOCK_KEY

__all__ = [
    "MIGRATIONS_DIR",
    "UPGRADE_COMMAND",
    "VERSION_TABLE",
    "Database",
    "alembic_config",
    "get_database",
    "head_revision",
    "session_scope",
]

logger = logging.getLogger(__name__)

# PostgreSQL's serialization_failure and deadlock_detected: the database aborted one of two
# conflicting transactions, and running it again may succeed.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
# The execution option that marks a read-only transaction (session_scope(read_only=True)).
_READ_ONLY = "forexgrid_read_only"

#: The command an out-of-date database's error message tells the user to run.
UPGRADE_COMMAND = "forexgrid db upgrade"
#: Where the Alembic environment and revision scripts live (package data).
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Alembic's version table; its presence marks a forexgrid database.
VERSION_TABLE = "alembic_version"


def alembic_config(migrations_dir: str | Path | None = None) -> Config:
    """Return an Alembic configuration built in code (no ``alembic.ini`` needed).

    Parameters
    ----------
    migrations_dir
        The ``script_location``; defaults to :data:`MIGRATIONS_DIR`.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir or MIGRATIONS_DIR))
    return cfg


@functools.lru_cache(maxsize=8)
def _heads(location: str) -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(alembic_config(location)).get_heads())


def head_revision(migrations_dir: str | Path | None = None) -> str:
    """Return the schema revision this forexgrid expects (the migrations' head)."""
    heads = _heads(str(migrations_dir or MIGRATIONS_DIR))
    if len(heads) != 1:
        raise StorageError(
            f"migrations in {migrations_dir or MIGRATIONS_DIR}: expected one "
            f"head revision, found {len(heads)}: {', '.join(heads)}"
        )
    return heads[0]


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


class Database:
    """One database: an engine, a session factory and the schema checks.

    Creating a Database does no I/O; the schema is checked (and a new database created) on
    first use by :meth:`session` / :meth:`session_scope`.

    Parameters
    ----------
    url
        An SQLAlchemy URL, e.g. ``sqlite:////abs/path/forexgrid.db`` or
        ``postgresql+psycopg://user:pw@host/db``.
    busy_timeout
        Seconds to wait for a lock (SQLite ``busy_timeout``; PostgreSQL ``lock_timeout``
        and connect timeout).
    echo
        Log every SQL statement (SQLAlchemy's ``echo``).
    migrations_dir
        Alternative Alembic ``script_location`` (tests use it to simulate a newer schema).

    Raises
    ------
    StorageError
        If the URL cannot be parsed or names a database driver that is not installed, or
        the SQLite path is a directory.
    ConfigError
        If ``busy_timeout`` is not a positive number.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        busy_timeout: float = 30.0,
        echo: bool = False,
        migrations_dir: str | Path | None = None,
    ) -> None:
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)):
            raise ConfigError(
                f"database.busy_timeout_seconds: must be a number > 0, got {busy_timeout!r}"
            )
        if not math.isfinite(busy_timeout) or busy_timeout <= 0:
            raise ConfigError(
                f"database.busy_timeout_seconds: must be a number > 0, got {busy_timeout!r}"
            )
        try:
            self.url: URL = make_url(url)
        except ArgumentError as exc:
            raise StorageError(
                f"database URL {url!r} is not an SQLAlchemy URL; expected e.g. "
                "'sqlite:///forexgrid.db' or 'postgresql+psycopg://user@host/dbname'"
            ) from exc
        self.busy_timeout = float(busy_timeout)
        self.echo = bool(echo)
        self.migrations_dir = Path(migrations_dir) if migrations_dir else MIGRATIONS_DIR
        self.sqlite_path: Path | None = None
        self._ready = False
        self._ready_lock = threading.Lock()
        self.engine = self._create_engine()
        self._sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._read_sessionmaker = sessionmaker(
            bind=self.engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """A new Database for ``settings.database_url`` with its timeout and echo options.

        Raises
        ------
        StorageError
            As the constructor.
        """
        return cls(
            settings.database_url,
            busy_timeout=settings.database.busy_timeout_seconds,
            echo=settings.database.echo,
        )

    # ------------------------------------------------------------------ engine

    def _create_engine(self) -> Engine:
        backend = self.url.get_backend_name()
        kwargs: dict[str, Any] = {"echo": self.echo}
        if backend == "sqlite":
            database = self.url.database or ""
            memory = database in ("", ":memory:") or database.startswith("file::memory:")
            if memory:
                # One shared connection, or each connection would see its own empty database.
                kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
            else:
                if not database.startswith("file:"):
                    self.sqlite_path = Path(database).expanduser()
                    self._check_sqlite_path(self.sqlite_path)
                kwargs["connect_args"] = {"timeout": self.busy_timeout}
        elif backend == "postgresql":
            kwargs["pool_pre_ping"] = True
            if self.url.get_driver_name() in ("psycopg", "psycopg2"):
                kwargs["connect_args"] = {"connect_timeout": max(1, math.ceil(self.busy_timeout))}
        try:
            engine = create_engine(self.url, **kwargs)
        except NoSuchModuleError as exc:
            raise StorageError(
                f"database URL {self.display_url}: SQLAlchemy has no dialect "
                f"{self.url.drivername!r} ({exc})"
            ) from exc
        except ImportError as exc:
            hint = " (pip install 'forexgrid[postgres]')" if backend == "postgresql" else ""
            raise StorageError(
                f"database URL {self.display_url}: the driver for {self.url.drivername!r} is "
                f"not installed: {exc}{hint}"
            ) from exc
        if backend == "sqlite":
            self._sqlite_events(engine, wal=self.sqlite_path is not None)
        elif backend == "postgresql":
            self._postgresql_events(engine)
        return engine

    def _sqlite_events(self, engine: Engine, *, wal: bool) -> None:
        timeout_ms = int(self.busy_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # The driver must not issue BEGIN itself: SQLAlchemy's "begin" event below does.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
                if wal:
                    cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA foreign_keys = ON")
            finally:
                cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            # A read-only transaction (session_scope(read_only=True)) reads a WAL snapshot
            # without the write lock, so a long read (a checkpoint of a large queue) does
            # not hold up the other processes' writes, nor the runner's heartbeat.
            if connection.get_execution_options().get(_READ_ONLY):
                connection.exec_driver_sql("BEGIN DEFERRED")
            else:
                connection.exec_driver_sql("BEGIN IMMEDIATE")

    def _postgresql_events(self, engine: Engine) -> None:
        timeout_ms = int(self.busy_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"SET lock_timeout = {timeout_ms}")
            finally:
                cursor.close()
            dbapi_connection.autocommit = autocommit

    # ------------------------------------------------------------------ naming

    @property
    def display_url(self) -> str:
        """The URL with its password hidden (``***``), for messages and logs."""
        return self.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """The backend name: ``"sqlite"``, ``"postgresql"``, ..."""
        return self.engine.dialect.name

    @property
    def where(self) -> str:
        """How messages name this database: the SQLite file, else the URL (no password)."""
        if self.sqlite_path is not None:
            return str(self.sqlite_path)
        return f"database {self.display_url}"

    def __repr__(self) -> str:
        return f"Database({self.display_url!r})"

    def error(self, exc: BaseException, doing: str = "") -> StorageError:
        """Return a StorageError naming this database for a SQLAlchemy/driver error."""
        message = _first_line(exc)
        low = message.lower()
        action = f" while {doing}" if doing else ""
        if getattr(getattr(exc, "orig", None), "sqlstate", None) in _TRANSIENT_SQLSTATES:
            return TransientStorageError(
                f"{self.where}: the transaction conflicted with another one{action} and was "
                f"aborted by the database: {message}"
            )
        if isinstance(exc, IntegrityError):
            text_ = f"{self.where}: integrity error{action}: {message}"
        elif "database is locked" in low or "lock timeout" in low:
            text_ = (
                f"{self.where}: the database is locked by another process{action} and stayed "
                f"locked longer than database.busy_timeout_seconds ({self.busy_timeout:g} s): "
                f"{message}; try again, or raise the timeout"
            )
        elif "file is not a database" in low:
            text_ = (
                f"{self.where}: not an SQLite database file ({message}); set database.url to "
                "a new file name, or move this file away"
            )
        elif "unable to open database file" in low:
            text_ = (
                f"{self.where}: cannot open the SQLite database file ({message}); check that "
                "its folder exists and is readable and writable"
            )
        elif "readonly database" in low or "read-only" in low:
            text_ = f"{self.where}: the database is read-only{action} ({message})"
        else:
            text_ = f"{self.where}: {message}{action}"
        return StorageError(text_)

    # ------------------------------------------------------------------ schema

    @staticmethod
    def _check_sqlite_path(path: Path) -> None:
        # SQLite writes the file and its -wal/-shm companions: never on a device or a FIFO.
        try:
            mode = path.stat().st_mode  # a link is followed, as SQLite does
        except FileNotFoundError:
            return  # a new database
        except OSError as exc:  # a name too long, a parent that is a file, a link loop
            raise StorageError(
                f"{quote_input(str(path))}: cannot be used as the SQLite database file: "
                f"{exc.strerror or exc}"
            ) from exc
        if stat.S_ISREG(mode):
            return
        raise StorageError(
            f"{path}: is {describe_file_type(mode)}, expected an SQLite database file (set "
            "database.url to e.g. sqlite:///forexgrid.db)"
        )

    def _prepare_sqlite_file(self) -> None:
        if self.sqlite_path is not None and not self.sqlite_path.exists():
            try:
                self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(
                    f"{self.sqlite_path}: cannot create the database folder: {exc.strerror}"
                ) from exc

    def _lock_schema(self, conn: Connection) -> None:
        # SQLite is already exclusive (BEGIN IMMEDIATE); PostgreSQL needs an explicit lock so
        # two processes creating one new database do not both run the migrations.
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})

    def _state(self, conn: Connection) -> tuple[str, str | None, list[str]]:
        """``(state, current revision, table names)``; state is one of empty, current,
        behind, ahead, foreign."""
        tables = sorted(inspect(conn).get_table_names())
        if VERSION_TABLE not in tables:
            return ("empty" if not tables else "foreign"), None, tables
        current = MigrationContext.configure(conn).get_current_revision()
        head = head_revision(self.migrations_dir)
        if current == head:
            return "current", current, tables
        if current is None:
            return ("empty" if tables == [VERSION_TABLE] else "foreign"), None, tables
        script = ScriptDirectory.from_config(alembic_config(self.migrations_dir))
        try:
            script.get_revision(current)
        except (CommandError, RevisionError):  # unknown here: written by a newer forexgrid
            return "ahead", current, tables
        return "behind", current, tables

    def _raise_for(self, state: str, current: str | None, tables: list[str]) -> None:
        head = head_revision(self.migrations_dir)
        if state == "empty":
            raise StorageError(
                f"{self.where}: has no forexgrid schema yet; it is created on first use, or "
                f"run: {UPGRADE_COMMAND}"
            )
        if state == "foreign":
            shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
            raise StorageError(
                f"{self.where}: is not a forexgrid database (it has tables {shown} but no "
                f"{VERSION_TABLE} table); set database.url to a new SQLite file or an empty "
                "database"
            )
        if state == "behind":
            raise StorageError(
                f"{self.where}: the database schema is out of date (revision {current}, this "
                f"forexgrid needs {head}); back the database up, then run: {UPGRADE_COMMAND}"
            )
        if state == "ahead":
            raise StorageError(
                f"{self.where}: the database schema is at revision {current!r}, which this "
                f"forexgrid does not know (it needs {head}): it was written by a newer "
                "forexgrid; upgrade forexgrid (pip install -U forexgrid) or use another "
                "database"
            )

    def schema_state(self) -> tuple[str, str | None]:
        """Return ``(state, current revision)`` without changing anything.

        ``state`` is ``"empty"`` (no table), ``"current"``, ``"behind"`` (an older
        revision), ``"ahead"`` (a revision this forexgrid does not know) or ``"foreign"``
        (tables but no forexgrid version).

        Raises
        ------
        StorageError
            If the database cannot be reached or read.
        """
        self._prepare_sqlite_file()
        try:
            with self.engine.connect() as conn:
                state, current, _ = self._state(conn)
                conn.rollback()
        except SQLAlchemyError as exc:
            raise self.error(exc, "reading the schema version") from exc
        return state, current

    def check_schema(self) -> None:
        """Check that the database has exactly this forexgrid's schema revision.

        Raises
        ------
        StorageError
            If the database is empty (message: it is created on first use), out of date
            (message ends with the command ``forexgrid db upgrade``), at an unknown newer
            revision, not a forexgrid database, or cannot be reached.
        """
        self._prepare_sqlite_file()
        try:
            with self.engine.connect() as conn:
                state, current, tables = self._state(conn)
                conn.rollback()
        except SQLAlchemyError as exc:
            raise self.error(exc, "reading the schema version") from exc
        self._raise_for(state, current, tables)

    def upgrade(self, revision: str = "head") -> str:
        """Create or upgrade the schema (Alembic ``upgrade``), then seed the default regimes.

        This is what ``forexgrid db upgrade`` runs. Safe to call on a current database.

        Parameters
        ----------
        revision
            Target revision (default: the newest).

        Returns
        -------
        str
            The revision the database is at afterwards.

        Raises
        ------
        StorageError
            If the database is not a forexgrid database, is at a revision this forexgrid
            does not know, or cannot be reached or written.
        """
        from forexgrid.storage.regimes_repo import seed_default_regimes

        self._prepare_sqlite_file()
        try:
            with self.engine.begin() as conn:
                self._lock_schema(conn)
                state, current, tables = self._state(conn)
                if state in ("foreign", "ahead"):
                    self._raise_for(state, current, tables)
                if state != "current" or revision != "head":
                    logger.info("upgrading %s from %s to %s", self.where, current, revision)
                    cfg = alembic_config(self.migrations_dir)
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, revision)
                with Session(bind=conn) as session:
                    seed_default_regimes(session)
                    session.flush()
                after = MigrationContext.configure(conn).get_current_revision()
        except SQLAlchemyError as exc:
            raise self.error(exc, "upgrading the schema") from exc
        self._ready = after == head_revision(self.migrations_dir)
        return after or ""

    def ensure_schema(self) -> None:
        """Make the database usable: create a new one, check an existing one (once).

        Raises
        ------
        StorageError
            As :meth:`check_schema`, except that an empty database is created instead.
        """
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            state, current = self.schema_state()
            if state == "empty":
                logger.info("creating the forexgrid schema in %s", self.where)
                self.upgrade()
            elif state != "current":
                self.check_schema()
            self._ready = True

    # ------------------------------------------------------------------ sessions

    def session(self, *, read_only: bool = False) -> Session:
        """Return a new Session (after :meth:`ensure_schema`); prefer :meth:`session_scope`."""
        self.ensure_schema()
        return self._read_sessionmaker() if read_only else self._sessionmaker()

    @contextmanager
    def session_scope(self, *, read_only: bool = False) -> Iterator[Session]:
        """A transaction: commit on success, roll back on error.

        With ``read_only`` the transaction only reads: on SQLite it begins ``DEFERRED``
        instead of ``IMMEDIATE``, reading one consistent WAL snapshot without the write lock,
        so other processes write meanwhile. Writing in it is a mistake (it may fail with
        ``SQLITE_BUSY_SNAPSHOT`` if another process wrote first).

        Raises
        ------
        StorageError
            For integrity errors (a duplicate, a broken reference) and operational errors
            (locked, unreachable), naming the database; ForexgridErrors raised inside pass
            through unchanged after the rollback.
        """
        session = self.session(read_only=read_only)
        try:
            yield session
            session.commit()
        except DBAPIError as exc:
            _rollback(session)
            raise self.error(exc) from exc
        except BaseException:
            _rollback(session)
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection (the Database stays usable)."""
        self.engine.dispose()


def _rollback(session: Session) -> None:
    try:
        session.rollback()
    except SQLAlchemyError:
        # The original error is more useful than the failed rollback; keep it, but say so.
        logger.warning("rollback failed after an error", exc_info=True)


# ---------------------------------------------------------------------- shared instances

_DATABASES: dict[tuple[str, float, bool], Database] = {}
_DATABASES_LOCK = threading.Lock()


def get_database(settings_or_url: Settings | str | URL | None = None) -> Database:
    """Return the shared :class:`Database` of some settings or a URL (one engine per URL).

    Parameters
    ----------
    settings_or_url
        Loaded settings (``settings.database_url``, ``database.busy_timeout_seconds``,
        ``database.echo``), a URL, or ``None`` for ``load_config(None)`` (which honours
        ``$FOREXGRID_DATABASE_URL``).

    Raises
    ------
    StorageError
        If the URL is invalid or its driver is missing.
    ConfigError
        If the default settings cannot be loaded.
    """
    if settings_or_url is None:
        settings_or_url = load_config(None)
    if isinstance(settings_or_url, Settings):
        url = settings_or_url.database_url
        timeout = float(settings_or_url.database.busy_timeout_seconds)
        echo = bool(settings_or_url.database.echo)
    elif isinstance(settings_or_url, (str, URL)):
        url, timeout, echo = str(settings_or_url), 30.0, False
        if isinstance(settings_or_url, URL):
            url = settings_or_url.render_as_string(hide_password=False)
    else:
        raise TypeError(
            f"expected Settings, a database URL or None, got {type(settings_or_url).__name__}"
        )
    key = (url, timeout, echo)
    with _DATABASES_LOCK:
        db = _DATABASES.get(key)
        if db is None:
            db = _DATABASES[key] = Database(url, busy_timeout=timeout, echo=echo)
        return db


@contextmanager
def session_scope(
    settings_or_db: Settings | Database | str | None = None, *, read_only: bool = False
) -> Iterator[Session]:
    """Open a transaction on the forexgrid database: commit on success, roll back on error.

    Parameters
    ----------
    settings_or_db
        A :class:`Database`, loaded settings, a URL, or ``None`` for the default settings
        (``load_config(None)``, so ``$FOREXGRID_DATABASE_URL`` is honoured).
    read_only
        A transaction that only reads: on SQLite it does not take the write lock
        (:meth:`Database.session_scope`).

    Yields
    ------
    sqlalchemy.orm.Session
        Pass it to the repository functions (``get_all_training_queues(session)`` ...).

    Raises
    ------
    StorageError
        If the database is out of date or unusable, on integrity errors, and when it is
        locked or unreachable (the message names the file or the URL, password hidden).

    Examples
    --------
    >>> from forexgrid.storage import session_scope
    >>> from forexgrid.storage.queues import get_all_training_queues
    >>> with session_scope() as session:                        # doctest: +SKIP
    ...     for q in get_all_training_queues(session):
    ...         print(f"{q.id}: {q.queue_name} - {q.status}")
    """
    db = settings_or_db if isinstance(settings_or_db, Database) else get_database(settings_or_db)
    with db.session_scope(read_only=read_only) as session:
        yield session
