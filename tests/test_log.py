"""The package logger: a NullHandler by default, the fronts' rotating file on request."""

from __future__ import annotations

import logging
import logging.handlers
import re

import pytest

from forexgrid import load_config
from forexgrid.log import FILE_ONLY, get_logger, setup_logging


@pytest.fixture
def package_logger():
    logger = logging.getLogger("forexgrid")
    before = (list(logger.handlers), logger.level)
    yield logger
    for handler in logger.handlers:
        if handler not in before[0]:
            handler.close()
    logger.handlers[:] = before[0]
    logger.setLevel(before[1])


def _settings(tmp_path, **logging_section):
    return load_config({"logging": logging_section}, workspace=tmp_path)


def test_import_attaches_only_a_null_handler_and_leaves_the_root_alone():
    import forexgrid  # noqa: F401

    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("forexgrid").handlers)
    assert get_logger("data").name == "forexgrid.data"
    assert get_logger().name == "forexgrid"


def test_rotating_file_sized_and_levelled_from_config(tmp_path, package_logger):
    root_handlers = list(logging.getLogger().handlers)
    path = setup_logging(_settings(tmp_path, level="DEBUG", max_log_size_mb=2, backup_count=3))
    assert path == tmp_path / "logs" / "training_pipeline.log"
    (handler,) = [
        h for h in package_logger.handlers if isinstance(h, logging.handlers.RotatingFileHandler)
    ]
    assert handler.maxBytes == 2 * 1024 * 1024
    assert handler.backupCount == 3
    assert handler.level == logging.DEBUG
    get_logger("core").debug("a debug line")
    handler.flush()
    assert "a debug line" in path.read_text()
    assert logging.getLogger().handlers == root_handlers


def test_level_filters_records(tmp_path, package_logger):
    path = setup_logging(_settings(tmp_path, level="WARNING"))
    get_logger("x").info("quiet")
    get_logger("x").warning("loud")
    text = path.read_text()
    assert "loud" in text and "quiet" not in text


def test_setup_twice_does_not_stack_handlers(tmp_path, package_logger):
    settings = _settings(tmp_path)
    setup_logging(settings, console_level="WARNING")
    count = len(package_logger.handlers)
    setup_logging(settings, console_level="WARNING")
    assert len(package_logger.handlers) == count


def test_no_file_when_log_to_file_is_off(tmp_path, package_logger):
    assert setup_logging(_settings(tmp_path, log_to_file=False)) is None
    assert not (tmp_path / "logs").exists()


def test_file_only_records_skip_the_console(tmp_path, package_logger, capsys):
    setup_logging(_settings(tmp_path), console_level="INFO")
    get_logger("cli").error("printed already", extra=FILE_ONLY)
    get_logger("cli").warning("shown")
    err = capsys.readouterr().err
    assert "shown" in err and "printed already" not in err
    assert "printed already" in (tmp_path / "logs" / "training_pipeline.log").read_text()


def test_unwritable_log_path_is_a_config_error(tmp_path, package_logger):
    from forexgrid.exceptions import ConfigError

    (tmp_path / "blocker").write_text("a file, not a directory")
    settings = _settings(tmp_path, log_file="./blocker/x.log")
    message = f"logging.log_file: {tmp_path / 'blocker'}: is a regular file, not a directory"
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        setup_logging(settings)


@pytest.mark.parametrize("kind", ["fifo", "dev-null", "dev-full", "link-to-dev-null", "dir"])
def test_a_log_file_that_is_not_a_regular_file_is_refused(tmp_path, package_logger, kind):
    import os
    import stat

    from forexgrid.exceptions import ConfigError

    path = {
        "fifo": tmp_path / "fifo.log",
        "dev-null": "/dev/null",
        "dev-full": "/dev/full",
        "link-to-dev-null": tmp_path / "link.log",
        "dir": tmp_path / "dir.log",
    }[kind]
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link-to-dev-null":
        path.symlink_to("/dev/null")
    elif kind == "dir":
        path.mkdir()
    before = os.lstat(path)
    # Rotating a log renames it: /dev/null would become /dev/null.1.
    settings = _settings(tmp_path, log_file=str(path), max_log_size_mb=0.001)
    with pytest.raises(ConfigError, match=r"^logging\.log_file: cannot write .*: it is "):
        setup_logging(settings)
    after = os.lstat(path)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    for device in ("/dev/null", "/dev/full"):
        assert stat.S_ISCHR(os.lstat(device).st_mode)
        assert not os.path.exists(device + ".1")


def test_a_log_file_link_to_a_regular_file_is_written_through(tmp_path, package_logger):
    real = tmp_path / "real.log"
    real.write_text("")
    link = tmp_path / "link.log"
    link.symlink_to(real)
    assert setup_logging(_settings(tmp_path, log_file=str(link))) == real
    get_logger("x").warning("through the link")
    assert "through the link" in real.read_text()
    assert link.is_symlink()


def test_a_log_folder_that_is_a_file_is_refused(tmp_path, package_logger):
    from forexgrid.exceptions import ConfigError

    (tmp_path / "logs").write_text("not a folder")
    message = f"logging.log_file: {tmp_path / 'logs'}: is a regular file, not a directory"
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        setup_logging(_settings(tmp_path))
