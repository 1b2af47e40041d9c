"""Retention: compress old model files, delete old ones that are not kept, delete one."""

from __future__ import annotations

import gzip
import logging
import math
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from forexgrid._atomic import atomic_path
from forexgrid.exceptions import ConfigError, StorageError
from forexgrid.storage.artifacts._layout import GZIP_SUFFIX, Layout, strip_gz

logger = logging.getLogger(__name__)

MB = 1024 * 1024  # "MB" in reports is the binary megabyte, as file managers show it
DAY = 86_400.0
_CHUNK = 1024 * 1024


def check_days(name: str, days_old: float) -> float:
    """``days_old`` as a float; ConfigError unless it is a finite number >= 0."""
    if (
        isinstance(days_old, bool)
        or not isinstance(days_old, (int, float))
        or not math.isfinite(days_old)  # NaN would compare false and delete everything
        or days_old < 0
    ):
        raise ConfigError(f"{name}: days_old must be a number >= 0, got {days_old!r}")
    return float(days_old)


def unlink(path: Path) -> int:
    """Delete ``path``; return the bytes it took (0 if it was already gone)."""
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise StorageError(f"model file {path}: cannot be deleted: {exc}") from exc
    logger.info("deleted %s (%d bytes)", path, size)
    return size


def delete(layout: Layout, path: str | os.PathLike[str]) -> int:
    """Delete the file of ``path`` and its compressed variant; return the bytes freed."""
    freed = sum(unlink(candidate) for candidate in layout.variants(path))
    if freed == 0:
        logger.info("model file %s was already gone", layout.absolute(path))
    return freed


def compress_old(layout: Layout, days_old: float, now: float | None) -> dict:
    """Gzip the uncompressed model files last modified more than ``days_old`` days ago.

    Each ``model_*.pkl`` becomes ``model_*.pkl.gz`` (written atomically, with the original's
    modification time, so age-based cleanup still counts from when the model was written);
    then the original is removed. The database keeps the ``.pkl`` path, hash and size.
    """
    cutoff = (time.time() if now is None else now) - check_days(
        "compress_old_models", days_old
    ) * DAY
    files: list[str] = []
    before = after = 0
    for source in layout.model_files():
        if source.name.endswith(GZIP_SUFFIX):
            continue
        try:
            stat = source.stat()
        except FileNotFoundError:  # deleted meanwhile (a model pushed out of its list)
            continue
        if stat.st_mtime >= cutoff:
            continue
        packed = source.with_name(source.name + GZIP_SUFFIX)
        try:
            with (
                atomic_path(packed) as tmp,
                open(source, "rb") as src,
                open(tmp, "wb") as raw,
                # mtime=0: the same pickle always compresses to the same bytes
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out,
            ):
                shutil.copyfileobj(src, out, _CHUNK)
            os.utime(packed, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            source.unlink()
        except FileNotFoundError:
            packed.unlink(missing_ok=True)
            continue
        except OSError as exc:
            raise StorageError(f"model file {source}: cannot be compressed: {exc}") from exc
        size = packed.stat().st_size
        files.append(source.name)
        before += stat.st_size
        after += size
        logger.info("compressed %s: %d -> %d bytes", source, stat.st_size, size)
    return {
        "compressed_files": len(files),
        "files": files,
        "bytes_before": before,
        "bytes_after": after,
        "saved_bytes": before - after,
        "saved_space_mb": (before - after) / MB,
    }


def cleanup_old(
    layout: Layout, days_old: float, keep: Iterable[str | os.PathLike[str]], now: float | None
) -> dict:
    """Delete model files last modified more than ``days_old`` days ago, except ``keep``."""
    cutoff = (time.time() if now is None else now) - check_days(
        "cleanup_old_models", days_old
    ) * DAY
    spared = {strip_gz(layout.relative(p)) for p in keep}
    files: list[str] = []
    freed = kept = 0
    for path in layout.model_files():
        try:
            if path.stat().st_mtime >= cutoff:
                continue
        except FileNotFoundError:
            continue
        if strip_gz(path.name) in spared:
            kept += 1
            continue
        freed += unlink(path)
        files.append(path.name)
    logger.info(
        "cleanup_old_models(days_old=%s): deleted %d files, freed %d bytes, kept %d",
        days_old,
        len(files),
        freed,
        kept,
    )
    return {
        "deleted_files": len(files),
        "files": files,
        "freed_bytes": freed,
        "freed_space_mb": freed / MB,
        "kept_files": kept,
    }
