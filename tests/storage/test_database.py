"""Database: creation on first use, the schema version checks, SQLite settings, errors,
session_scope, and the user guide's inspection snippet."""

from __future__ import annotations

import re
import shutil
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text, update

from forexgrid.config import DATABASE_URL_ENV, load_config
from forexgrid.exceptions import ConfigError, StorageError
from forexgrid.storage.database import (
    MIGRATIONS_DIR,
    UPGRADE_COMMAND,
    Database,
    get_database,
    head_revision,
    session_scope,
)
from forexgrid.storage.queues import create_queue, get_all_training_queues
from forexgrid.storage.regimes_repo import add_regime, list_regimes
from forexgrid.storage.tables import Base, RegimeDefinition, utcnow

LATER_REVISION = '''"""A later schema revision (test only)."""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("extra_table", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("extra_table")
'''

GUIDE_SNIPPET = """
from forexgrid.storage import session_scope
from forexgrid.storage.queues import get_all_training_queues

with session_scope() as session:
    queues = get_all_training_queues(session)
    for q in queues:
        print(f"{q.id}: {q.queue_name} - {q.status} - {q.current_index}/{q.total_configs}")
"""


def test_head_revision_is_the_pbo_state_one():
    assert head_revision() == "0004"


def test_new_database_is_created_and_seeded_on_first_use(make_db):
    db = make_db()
    assert db.schema_state() == ("empty", None)
    with db.session_scope() as s:
        names = [r.name for r in list_regimes(s)]
    assert names == ["bull_trending", "bear_trending", "volatile_ranging", "calm_ranging"]
    assert db.schema_state() == ("current", "0004")


def test_new_sqlite_file_gets_its_folder(tmp_path):
    path = tmp_path / "new" / "folder" / "fg.db"
    db = Database(f"sqlite:///{path}")
    try:
        with db.session_scope() as s:
            assert get_all_training_queues(s) == []
    finally:
        db.dispose()
    assert path.is_file()


def test_upgrade_is_idempotent(db):
    assert db.upgrade() == "0004"
    assert db.upgrade() == "0004"
    with db.session_scope() as s:
        assert len(list_regimes(s)) == 4
    db.check_schema()


def test_check_schema_of_an_empty_database(make_db):
    db = make_db()
    message = (
        f"{db.where}: has no forexgrid schema yet; it is created on first use, or run: "
        f"{UPGRADE_COMMAND}"
    )
    with pytest.raises(StorageError, match=re.escape(message)):
        db.check_schema()


def _later_migrations(tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / "0005_later.py").write_text(LATER_REVISION)
    return folder


def test_out_of_date_database_names_the_upgrade_command(db, make_db, tmp_path):
    newer = make_db(migrations_dir=_later_migrations(tmp_path))
    message = (
        f"{newer.where}: the database schema is out of date (revision 0004, this forexgrid "
        "needs 0005); back the database up, then run: forexgrid db upgrade"
    )
    with pytest.raises(StorageError, match=re.escape(message)):
        newer.check_schema()
    # Never upgraded behind the user's back: every use raises the same error.
    with pytest.raises(StorageError, match=re.escape(message)):
        with newer.session_scope():
            pass
    assert newer.upgrade() == "0005"
    newer.check_schema()
    with newer.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM extra_table")).scalar() == 0


def test_database_ahead_of_this_forexgrid_is_refused(db, make_db):
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    fresh = make_db()
    message = (
        f"{fresh.where}: the database schema is at revision '9999', which this forexgrid does "
        "not know (it needs 0004): it was written by a newer forexgrid"
    )
    with pytest.raises(StorageError, match=re.escape(message)):
        fresh.check_schema()
    with pytest.raises(StorageError, match=re.escape(message)):
        fresh.upgrade()
    with pytest.raises(StorageError, match=re.escape(message)):
        with fresh.session_scope():
            pass


def test_database_of_another_application_is_refused(make_db):
    db = make_db()
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE customers (id INTEGER PRIMARY KEY)"))
    message = (
        f"{db.where}: is not a forexgrid database (it has tables customers but no "
        "alembic_version table); set database.url to a new SQLite file or an empty database"
    )
    for attempt in (db.check_schema, db.upgrade):
        with pytest.raises(StorageError, match=re.escape(message)):
            attempt()
    with pytest.raises(StorageError, match=re.escape(message)):
        with db.session_scope():
            pass


def test_migrations_create_exactly_the_declared_tables(db):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode_with_busy_timeout_and_foreign_keys(db, backend):
    if backend != "sqlite":
        pytest.skip("SQLite settings")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_foreign_keys_are_enforced(db):
    from forexgrid.storage.tables import InferenceResult

    with pytest.raises(StorageError, match="integrity error"):
        with db.session_scope() as s:
            s.add(
                InferenceResult(
                    run_id=999, signal="direct", threshold=0.0, regime="all", split="test"
                )
            )


def test_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are not the tables you are looking for\n" * 100)
    db = Database(f"sqlite:///{path}")
    message = f"{path}: not an SQLite database file (file is not a database)"
    with pytest.raises(StorageError, match=re.escape(message)):
        with db.session_scope():
            pass


def test_a_directory_instead_of_a_database_file(tmp_path):
    message = f"{tmp_path}: is a directory, expected an SQLite database file"
    with pytest.raises(StorageError, match=re.escape(message)):
        Database(f"sqlite:///{tmp_path}")


def test_a_database_path_the_system_cannot_use_is_one_storage_error(tmp_path):
    (tmp_path / "file").write_text("x")
    for path, problem in (
        (tmp_path / "file" / "x.db", "Not a directory"),
        (tmp_path / ("x" * 5000), "File name too long"),
    ):
        with pytest.raises(StorageError, match=re.escape(f"database file: {problem}")):
            Database(f"sqlite:///{path}")


@pytest.mark.parametrize("kind", ["fifo", "device", "link-to-device", "dev-null"])
def test_a_database_path_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    import os
    import stat

    path = Path("/dev/null") if kind == "dev-null" else tmp_path / "forexgrid.db"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # our own /dev/null
    elif kind == "link-to-device":
        path.symlink_to("/dev/null")
    shown = "a FIFO (named pipe)" if kind == "fifo" else "a character device"
    message = f"{path}: is {shown}, expected an SQLite database file"
    with pytest.raises(StorageError, match=re.escape(message)):
        Database(f"sqlite:///{path}")
    assert not any(p.name.startswith("forexgrid.db-") for p in tmp_path.iterdir())
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    assert not os.path.exists("/dev/null-wal") and not os.path.exists("/dev/null-journal")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "database URL 'not a url' is not an SQLAlchemy URL"),
        ("nosuchdb://host/x", "database URL nosuchdb://host/x: SQLAlchemy has no dialect"),
    ],
    ids=["unparseable", "unknown-dialect"],
)
def test_bad_urls(url, message):
    with pytest.raises(StorageError, match=re.escape(message)):
        Database(url)


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), "30", True], ids=repr)
def test_busy_timeout_must_be_positive(timeout):
    with pytest.raises(ConfigError, match=re.escape("database.busy_timeout_seconds")):
        Database("sqlite://", busy_timeout=timeout)


def test_locked_database_becomes_a_storage_error_naming_it(db, make_db, empty_url, backend):
    impatient = make_db(busy_timeout=0.2)
    impatient.ensure_schema()
    held = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        if backend == "sqlite":
            conn = sqlite3.connect(empty_url.removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
        else:
            conn = db.engine.connect()
            conn.execute(text("LOCK TABLE training_queue IN ACCESS EXCLUSIVE MODE"))
        held.set()
        release.wait(10)
        conn.rollback() if backend != "sqlite" else conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold_lock)
    thread.start()
    try:
        assert held.wait(10)
        message = f"{impatient.where}: the database is locked by another process"
        with pytest.raises(StorageError, match=re.escape(message)) as info:
            with impatient.session_scope() as s:
                get_all_training_queues(s)
        assert "database.busy_timeout_seconds (0.2 s)" in str(info.value)
    finally:
        release.set()
        thread.join()


def test_unreachable_server_error_hides_the_password():
    db = Database("postgresql+psycopg://fg:s3cret@127.0.0.1:9/forexgrid", busy_timeout=2)
    with pytest.raises(StorageError) as info:
        with db.session_scope():
            pass
    message = str(info.value)
    assert message.startswith("database postgresql+psycopg://fg:***@127.0.0.1:9/forexgrid: ")
    assert "s3cret" not in message
    db.dispose()


def test_session_scope_commits_on_success_and_rolls_back_on_error(db):
    with db.session_scope() as s:
        add_regime(s, "kept", {"returns": "> 0"})
    with pytest.raises(RuntimeError, match="boom"):
        with db.session_scope() as s:
            add_regime(s, "lost", {"returns": "< 0"})
            raise RuntimeError("boom")
    with db.session_scope() as s:
        names = {r.name for r in list_regimes(s)}
    assert "kept" in names and "lost" not in names


def test_integrity_error_becomes_storage_error(db):
    now = utcnow()
    message = f"{db.where}: integrity error: "
    with pytest.raises(StorageError, match=re.escape(message)):
        with db.session_scope() as s:
            s.add(
                RegimeDefinition(
                    name="bull_trending",
                    description="",
                    rules_json={"returns": "> 0"},
                    active=True,
                    is_default=False,
                    created_at=now,
                    updated_at=now,
                )
            )


def test_times_are_stored_in_utc_and_returned_aware(db):
    naive = datetime(2024, 1, 2, 3, 4, 5, 123456)
    paris = datetime(2024, 1, 2, 4, 4, 5, 123456, tzinfo=timezone(timedelta(hours=1)))
    with db.session_scope() as s:
        for name, when in (("naive", naive), ("paris", paris)):
            s.add(
                RegimeDefinition(
                    name=name,
                    description="",
                    rules_json={"returns": "> 0"},
                    active=True,
                    is_default=False,
                    created_at=when,
                    updated_at=when,
                )
            )
    with db.session_scope() as s:
        got = {r.name: r.created_at for r in list_regimes(s)}
    expected = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    assert got["naive"] == expected and got["naive"].tzinfo == timezone.utc
    assert got["paris"] == expected and got["paris"].tzinfo == timezone.utc


def test_session_scope_accepts_a_database_settings_or_url(db, empty_url):
    settings = load_config({"database": {"url": empty_url}})
    for target in (db, settings, empty_url):
        with session_scope(target) as s:
            assert len(list_regimes(s)) == 4
    assert get_database(empty_url) is get_database(empty_url)
    get_database(empty_url).dispose()
    get_database(settings).dispose()


def test_database_from_settings(db, empty_url, tmp_path):
    settings = load_config(
        {"database": {"url": "sqlite:///sub/fg.db", "busy_timeout_seconds": 2.5, "echo": True}},
        workspace=tmp_path,
    )
    made = Database.from_settings(settings)
    assert made.sqlite_path == tmp_path / "sub" / "fg.db"
    assert (made.busy_timeout, made.echo) == (2.5, True)
    made.dispose()


def test_session_scope_rejects_other_arguments():
    with pytest.raises(TypeError, match="expected Settings, a database URL or None, got int"):
        with session_scope(3):  # type: ignore[arg-type]
            pass


def test_guide_inspection_snippet_runs_verbatim(db, empty_url, spec, monkeypatch, capsys):
    with db.session_scope() as s:
        queue = create_queue(s, spec, name="overnight grid")
    monkeypatch.setenv(DATABASE_URL_ENV, empty_url)
    try:
        exec(compile(GUIDE_SNIPPET, "<guide snippet>", "exec"), {})
    finally:
        get_database(load_config(None)).dispose()
    assert capsys.readouterr().out == f"{queue.id}: overnight grid - pending - 0/4\n"


def test_upgrading_a_0001_database_keeps_its_bests_as_legacy(make_db):
    """A database of the previous release upgrades in place: its best entries stay (with no
    validation window: they were scored before windows and trials were recorded) and are
    never ranked against new ones."""
    from forexgrid.storage.bests import best_models_table, load_bests
    from forexgrid.storage.runs import run_chosen

    db = make_db()
    assert db.upgrade("0001") == "0001"
    now = "2026-11-28 10:00:00"
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO training_queue (id, queue_uuid, queue_name, status, grid_json, "
                "settings_json, total_configs, skipped_count, current_index, completed_count, "
                "failed_count, kept_count, deleted_count, created_at, updated_at) VALUES "
                "(1, 'q-1', 'old', 'completed', '{}', '{}', 1, 0, 1, 1, 0, 1, 0, :t, :t)"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO training_runs (id, run_uuid, queue_id, queue_index, config_hash, "
                "config_json, status, model_type, symbol, timeframe, days_history, horizon, "
                "encoder, is_model_kept, created_at) VALUES (1, 'r-1', 1, 0, 'h', '{}', "
                "'completed', 'ridge', 'EURUSD', '1h', 60, 3, 'time_delta', :kept, :t)"
            ),
            {"t": now, "kept": True},
        )
        conn.execute(
            text(
                "INSERT INTO chosen_results (run_id, regime, signal, threshold, val_sharpe, "
                "reason) VALUES (1, 'bull_trending', 'direct', 0.5, 1.5, 'best validation Sharpe')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO regime_best_models (symbol, regime, rank, run_id, config_hash, "
                "score, signal, threshold, lookback, test_sharpe, achieved_at) VALUES "
                "('EURUSD', 'bull_trending', 1, 1, 'h', 1.5, 'direct', 0.5, 50, 0.7, :t)"
            ),
            {"t": now},
        )
    assert db.upgrade() == "0004"
    with db.session_scope() as s:
        (entry,) = load_bests(s, window=None)[("EURUSD", "bull_trending")]
        assert (entry.run_id, entry.score, entry.validation_window) == (1, 1.5, None)
        table = best_models_table(s, window="all")
        legacy = table[table["has_best"]].iloc[0]
        assert legacy["note"].startswith("legacy") and legacy["val_sharpe"] == 1.5
        assert run_chosen(s, 1)["rules_version"].isna().all()
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_a_read_only_transaction_lets_others_write_meanwhile(db, make_db, backend):
    """A long read (a checkpoint) in ``session_scope(read_only=True)`` holds no write lock:
    another connection's write goes through while it is open, and the reader keeps its
    snapshot. An ordinary transaction (BEGIN IMMEDIATE on SQLite) makes the write wait."""
    impatient = make_db(busy_timeout=0.2)
    with db.session_scope(read_only=True) as reader:
        before = reader.scalar(select(func.count()).select_from(RegimeDefinition))
        with impatient.session_scope() as writer:
            writer.execute(update(RegimeDefinition).values(description="written meanwhile"))
        assert reader.scalar(select(func.count()).select_from(RegimeDefinition)) == before
    with db.session_scope(read_only=True) as reader:
        descriptions = set(reader.scalars(select(RegimeDefinition.description)))
    assert descriptions == {"written meanwhile"}
    if backend == "sqlite":
        with db.session_scope() as holder:
            holder.scalar(select(func.count()).select_from(RegimeDefinition))
            with pytest.raises(StorageError, match="locked"):
                with impatient.session_scope() as writer:
                    writer.execute(update(RegimeDefinition).values(description="blocked"))
