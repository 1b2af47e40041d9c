"""The package logger and the file logging that fronts set up.

The library only ever logs to loggers under ``forexgrid``; it never touches the root logger
and attaches nothing but a ``NullHandler``. Fronts (the CLI, the widgets, batch notebooks)
call :func:`setup_logging` to add the rotating file ``logs/training_pipeline.log`` the user
guide names, sized and levelled from the ``logging`` section of the configuration.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forexgrid.config import Settings

__all__ = ["FILE_ONLY", "get_logger", "setup_logging"]

PACKAGE_LOGGER = "forexgrid"
FILE_FORMAT = "%(asctime)s %(levelname)-8s %(name)s [pid %(process)d]: %(message)s"
CONSOLE_FORMAT = "%(levelname)s: %(message)s"

# Pass as ``extra=FILE_ONLY`` for a record meant for the log file but not the console (the
# CLI logs the error it has already printed in its own words).
FILE_ONLY = {"file_only": True}

# Marks the handlers setup_logging adds, so calling it again replaces them instead of
# stacking duplicates (a notebook re-runs its set-up cell often).
_OWNED = "_forexgrid_front_handler"

logging.getLogger(PACKAGE_LOGGER).addHandler(logging.NullHandler())


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the package logger, or the child logger ``forexgrid.<name>``."""
    return logging.getLogger(PACKAGE_LOGGER if not name else f"{PACKAGE_LOGGER}.{name}")


def setup_logging(settings: Settings, console_level: int | str | None = None) -> Path | None:
    """Attach the fronts' handlers to the ``forexgrid`` logger (never the root logger).

    Parameters
    ----------
    settings
        The loaded configuration; ``settings.logging`` gives the level, whether to log to a
        file, the file's path and its rotation size.
    console_level
        When given, also log records of at least this level to stderr (the CLI uses WARNING,
        or DEBUG with ``--verbose``).

    Returns
    -------
    pathlib.Path or None
        The log file in use, or None when ``logging.log_to_file`` is off.

    Raises
    ------
    ConfigError
        When the log file's directory cannot be created, the file cannot be opened, or it
        is not a regular file (a device, FIFO, directory or a link to one).
    """
    from forexgrid._atomic import ensure_directory, writable_target
    from forexgrid.exceptions import ConfigError, PathError

    logger = logging.getLogger(PACKAGE_LOGGER)
    for handler in [h for h in logger.handlers if getattr(h, _OWNED, False)]:
        logger.removeHandler(handler)
        handler.close()
    levels = [logging.getLevelName(settings.logging.level)]

    log_path = None
    if settings.logging.log_to_file:
        try:
            ensure_directory(settings.log_path.parent)
            # A regular file or a new one: rotating renames the file, which must never be
            # /dev/null or a FIFO. A link to a regular file logs (and rotates) at its target.
            log_path = writable_target(settings.log_path)
            file_handler = logging.handlers.RotatingFileHandler(
                log_path,
                maxBytes=int(settings.logging.max_log_size_mb * 1024 * 1024),
                backupCount=settings.logging.backup_count,
                encoding="utf-8",
            )
        except PathError as err:
            raise ConfigError(f"logging.log_file: {err}") from err
        except OSError as err:
            raise ConfigError(
                f"logging.log_file: cannot open {str(settings.log_path)!r} for writing: "
                f"{err.strerror}"
            ) from err
        file_handler.setLevel(settings.logging.level)
        file_handler.setFormatter(logging.Formatter(FILE_FORMAT))
        setattr(file_handler, _OWNED, True)
        logger.addHandler(file_handler)

    if console_level is not None:
        console = logging.StreamHandler()
        console.setLevel(console_level)
        console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
        console.addFilter(lambda record: not getattr(record, "file_only", False))
        setattr(console, _OWNED, True)
        logger.addHandler(console)
        levels.append(console.level)

    # The logger passes records down to the most verbose of its handlers.
    logger.setLevel(min(levels))
    return log_path
