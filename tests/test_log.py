"""The package logger: a NullHandler by default, the fronts' rotating file on request."""

from __future__ import annotations

import logging
import logging.handlers

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
    with pytest.raises(ConfigError, match=r"^logging\.log_file: cannot open "):
        setup_logging(settings)
