"""Model files: pickles in the artifacts folder, written atomically and verified on load.

Layout of the artifacts folder (``settings.artifacts_path``)::

    model_<run_uuid>.pkl       a fitted model, pickle protocol 5
    model_<run_uuid>.pkl.gz    the same pickle, gzip-compressed by compress_old_models()
    .model_<...>.<hex>.tmp     a write in progress, or left behind by a killed process

The database records, per run, the file's path *relative to the artifacts folder*
(``model_<run_uuid>.pkl``, so a workspace can be moved), its SHA-256 and its size. Both
stay those of the uncompressed pickle after compression: :meth:`ModelFileManager.load`
decompresses first and verifies the hash of the pickle before unpickling it. Unpickling
runs code chosen by whoever wrote the file, so nothing is unpickled unless its bytes match
the hash recorded when forexgrid wrote it.

This module is file logic only. Which files are kept, and what the database says about
them, is decided by the runner; it passes the recorded paths and hashes in.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import os
import pickle
import re
import shutil
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from forexgrid._atomic import atomic_path, is_temp_name
from forexgrid.exceptions import ConfigError, StorageError

if TYPE_CHECKING:
    from forexgrid.config import Settings

__all__ = ["ModelFile", "ModelFileManager", "ReconcileReport"]

logger = logging.getLogger(__name__)

PICKLE_PROTOCOL = 5
_MB = 1024 * 1024  # "MB" in reports is the binary megabyte, as file managers show it
_DAY = 86_400.0
_CHUNK = 1024 * 1024
_GZIP_SUFFIX = ".gz"
_MODEL_RE = re.compile(r"^model_[A-Za-z0-9][A-Za-z0-9_-]*\.pkl(?:\.gz)?$")
_UUID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ModelFile:
    """A model file as the database records it.

    Attributes
    ----------
    path : str
        POSIX path relative to the artifacts folder (``model_<run_uuid>.pkl``).
    sha256 : str
        Hex SHA-256 of the pickle (of the uncompressed bytes, also after compression).
    size_bytes : int
        Size of the pickle in bytes.
    """

    path: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class ReconcileReport:
    """What :meth:`ModelFileManager.reconcile` found and did.

    Attributes
    ----------
    removed : tuple of str
        Files deleted: model files no run references and leftover temporary files.
    freed_bytes : int
        Bytes those files took.
    missing : tuple of str
        Referenced paths with no file (neither ``.pkl`` nor ``.pkl.gz``).
    corrupt : tuple of str
        Referenced paths whose file exists but does not match the recorded SHA-256 (or
        cannot be decompressed). Left in place for inspection.
    unknown : tuple of str
        Files in the folder that forexgrid did not name; left alone.
    """

    removed: tuple[str, ...] = ()
    freed_bytes: int = 0
    missing: tuple[str, ...] = ()
    corrupt: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every referenced file is present and verifies."""
        return not self.missing and not self.corrupt

    @property
    def freed_space_mb(self) -> float:
        """``freed_bytes`` in MB (2**20 bytes)."""
        return self.freed_bytes / _MB

    def __str__(self) -> str:
        return (
            f"reconcile: removed {len(self.removed)} files ({self.freed_space_mb:.2f} MB), "
            f"{len(self.missing)} missing, {len(self.corrupt)} corrupt, "
            f"{len(self.unknown)} unknown left alone"
        )


class _HashingWriter:
    """A write-only file object that hashes what passes through to ``raw``."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()

    def write(self, data: Any) -> int:
        # The pickler hands over bytes and, for large buffers, memoryviews.
        self.digest.update(data)
        return self._raw.write(data)


def _check_days(name: str, days_old: float) -> float:
    if (
        isinstance(days_old, bool)
        or not isinstance(days_old, (int, float))
        or not math.isfinite(days_old)  # NaN would compare false and delete everything
        or days_old < 0
    ):
        raise ConfigError(f"{name}: days_old must be a number >= 0, got {days_old!r}")
    return float(days_old)


def _check_sha(path: str, sha256: object) -> str:
    if not isinstance(sha256, str) or not _SHA_RE.match(sha256.lower()):
        raise StorageError(
            f"model file {path}: recorded SHA-256 must be 64 hex digits, got {sha256!r}; "
            "refusing to unpickle an unverified file"
        )
    return sha256.lower()


class ModelFileManager:
    """Save, load, verify, compress and clean up the model files of one workspace.

    Parameters
    ----------
    artifacts_dir : path or None
        The artifacts folder; None uses ``load_config(None).artifacts_path``. It is created
        by the first :meth:`save`; the other methods treat a missing folder as empty.

    Notes
    -----
    Paths returned and accepted are relative to the folder (``model_<uuid>.pkl``). Absolute
    paths inside the folder are accepted too; a path outside it is refused, so a bad
    database row can never make forexgrid read or delete an unrelated file. One process
    (the runner's coordinator) writes the folder at a time.
    """

    def __init__(
        self,
        artifacts_dir: str | os.PathLike[str] | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        if artifacts_dir is None:
            if settings is None:
                from forexgrid.config import load_config

                settings = load_config(None)
            artifacts_dir = settings.artifacts_path
        # With settings, the database can tell which models are kept (cleanup_old_models).
        self._settings = settings
        self.artifacts_dir = Path(os.path.abspath(Path(artifacts_dir).expanduser()))

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelFileManager:
        """Return a manager of ``settings.artifacts_path``.

        ``settings.storage.compress_old_models`` is the runner's switch for calling
        :meth:`compress_old_models`; the manager itself does what it is asked.
        """
        return cls(settings.artifacts_path, settings=settings)

    def __repr__(self) -> str:
        return f"ModelFileManager({str(self.artifacts_dir)!r})"

    # ------------------------------------------------------------------------- paths

    def relative(self, path: str | os.PathLike[str]) -> str:
        """Return ``path`` as the POSIX path relative to the artifacts folder.

        Raises
        ------
        StorageError
            ``path`` is empty or lies outside the artifacts folder.
        """
        text = os.fspath(path)
        if not text:
            raise StorageError(f"model file path is empty (artifacts folder {self.artifacts_dir})")
        candidate = Path(text).expanduser()
        if not candidate.is_absolute():
            candidate = self.artifacts_dir / candidate
        candidate = Path(os.path.normpath(candidate))
        try:
            rel = candidate.relative_to(self.artifacts_dir)
        except ValueError:
            rel = None
        if rel is None or rel == Path("."):
            raise StorageError(
                f"model file {text}: not inside the artifacts folder {self.artifacts_dir}"
            )
        return rel.as_posix()

    def absolute(self, path: str | os.PathLike[str]) -> Path:
        """Return the absolute location of ``path`` (relative or absolute, inside the folder).

        Raises
        ------
        StorageError
            ``path`` lies outside the artifacts folder.
        """
        return self.artifacts_dir / self.relative(path)

    def path_of(self, recorded_path: str | os.PathLike[str]) -> Path:
        """Return the file that holds ``recorded_path``: itself, else its ``.gz`` variant.

        Parameters
        ----------
        recorded_path : path
            The path the database records (``model_<uuid>.pkl``); the ``.pkl.gz`` form is
            accepted too.

        Returns
        -------
        Path
            The absolute path of the uncompressed file if it exists, else of the compressed
            one if that exists, else of the uncompressed one (which does not exist).

        Raises
        ------
        StorageError
            ``recorded_path`` lies outside the artifacts folder.
        """
        plain = self.absolute(_strip_gz(self.relative(recorded_path)))
        if plain.is_file():
            return plain
        packed = plain.with_name(plain.name + _GZIP_SUFFIX)
        return packed if packed.is_file() else plain

    def _variants(self, recorded_path: str | os.PathLike[str]) -> list[Path]:
        plain = self.absolute(_strip_gz(self.relative(recorded_path)))
        return [plain, plain.with_name(plain.name + _GZIP_SUFFIX)]

    # ------------------------------------------------------------------- save / load

    def save(self, model: Any, run_uuid: str) -> ModelFile:
        """Pickle ``model`` to ``model_<run_uuid>.pkl`` atomically.

        The pickle (protocol 5) is streamed to a temporary file in the artifacts folder,
        hashed on the way, fsynced and renamed, so the file under the final name is always
        complete. An existing file of the same run is replaced, and a stale compressed
        variant of it removed.

        Parameters
        ----------
        model : object
            Any picklable object (a fitted estimator).
        run_uuid : str
            The run's UUID; letters, digits, ``-`` and ``_`` only.

        Returns
        -------
        ModelFile
            The relative path, SHA-256 and size to record.

        Raises
        ------
        StorageError
            ``run_uuid`` is not a safe file-name part, the model cannot be pickled, or the
            file cannot be written. No partial file is left under the final name.
        """
        target = self._target(run_uuid)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_path(target) as tmp, open(tmp, "wb") as raw:
                writer = _HashingWriter(raw)
                pickle.Pickler(writer, protocol=PICKLE_PROTOCOL).dump(model)
                raw.flush()
                size = os.fstat(raw.fileno()).st_size
        except OSError as exc:
            raise StorageError(f"model file {target}: cannot be written: {exc}") from exc
        except Exception as exc:  # whatever a __reduce__ raises, the model is unpicklable
            raise StorageError(
                f"model of run {run_uuid}: cannot be pickled: {type(exc).__name__}: {exc}"
            ) from exc
        return self._finish_save(target, writer.digest.hexdigest(), size)

    def save_bytes(self, payload: bytes | bytearray | memoryview, run_uuid: str) -> ModelFile:
        """Write an already pickled model to ``model_<run_uuid>.pkl`` atomically.

        Workers return the fitted model pickled inside their result; the coordinator writes
        those bytes as they are instead of unpickling and pickling again.

        Parameters
        ----------
        payload : bytes-like
            The pickle.
        run_uuid : str
            The run's UUID; letters, digits, ``-`` and ``_`` only.

        Returns
        -------
        ModelFile
            The relative path, SHA-256 and size to record.

        Raises
        ------
        StorageError
            ``run_uuid`` is not a safe file-name part, or the file cannot be written.
        """
        target = self._target(run_uuid)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = memoryview(payload).cast("B")
        try:
            with atomic_path(target) as tmp, open(tmp, "wb") as raw:
                raw.write(data)
        except OSError as exc:
            raise StorageError(f"model file {target}: cannot be written: {exc}") from exc
        return self._finish_save(target, hashlib.sha256(data).hexdigest(), data.nbytes)

    def _target(self, run_uuid: str) -> Path:
        if not isinstance(run_uuid, str) or not _UUID_RE.match(run_uuid):
            raise StorageError(
                f"run_uuid must be letters, digits, '-' or '_' (a file-name part), "
                f"got {run_uuid!r}"
            )
        return self.artifacts_dir / f"model_{run_uuid}.pkl"

    def _finish_save(self, target: Path, sha256: str, size: int) -> ModelFile:
        # A compressed file of an earlier attempt of the same run would hold other bytes
        # under the same recorded path.
        target.with_name(target.name + _GZIP_SUFFIX).unlink(missing_ok=True)
        saved = ModelFile(path=target.name, sha256=sha256, size_bytes=size)
        logger.info("saved model file %s (%d bytes, sha256 %s)", target, size, sha256)
        return saved

    def load(self, path: str | os.PathLike[str], sha256: str) -> Any:
        """Return the model in ``path`` after verifying its SHA-256.

        The bytes are read (and decompressed, for a ``.pkl.gz`` file), hashed and compared
        with ``sha256`` *before* anything is unpickled.

        Parameters
        ----------
        path : path
            The recorded path; the ``.gz`` variant is found by :meth:`path_of`.
        sha256 : str
            The recorded hex SHA-256 of the uncompressed pickle.

        Returns
        -------
        object
            The unpickled model.

        Raises
        ------
        StorageError
            The file is missing or unreadable, cannot be decompressed, its hash differs
            from ``sha256`` (the message names the file and both hashes), or the verified
            pickle cannot be unpickled (e.g. a library the model needs is missing).
        """
        expected = _check_sha(str(path), sha256)
        data, actual = self._read(path)
        if actual != expected:
            raise StorageError(
                f"model file {self.path_of(path)}: SHA-256 mismatch: recorded {expected}, "
                f"file has {actual}; the file is corrupt or was modified and was not loaded"
            )
        try:
            return pickle.loads(data)
        except Exception as exc:  # any error unpickling a verified file is the same fault
            raise StorageError(
                f"model file {self.path_of(path)}: verified but cannot be unpickled: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def verify(self, path: str | os.PathLike[str], sha256: str) -> bool:
        """Whether the file of ``path`` exists and its pickle hashes to ``sha256``.

        Returns False for a missing, unreadable or undecompressable file, and for a
        malformed ``sha256``.

        Raises
        ------
        StorageError
            ``path`` lies outside the artifacts folder.
        """
        self.relative(path)  # outside the folder is an error, not a False
        try:
            expected = _check_sha(str(path), sha256)
            return self._hash_file(self.path_of(path)) == expected
        except StorageError as exc:
            logger.warning("%s", exc)
            return False

    def _read(self, path: str | os.PathLike[str]) -> tuple[bytes, str]:
        """Return the (decompressed) bytes of ``path`` and their hex SHA-256."""
        found = self.path_of(path)
        try:
            if found.name.endswith(_GZIP_SUFFIX):
                with gzip.open(found, "rb") as handle:
                    data = handle.read()
            else:
                data = found.read_bytes()
        except FileNotFoundError as exc:
            raise StorageError(f"model file {found}: not found (nor {found.name}.gz)") from exc
        except (OSError, EOFError, zlib.error) as exc:
            raise StorageError(f"model file {found}: cannot be read: {exc}") from exc
        return data, hashlib.sha256(data).hexdigest()

    def _hash_file(self, found: Path) -> str:
        """Hex SHA-256 of the (decompressed) content of ``found``, streamed."""
        digest = hashlib.sha256()
        try:
            opener = gzip.open if found.name.endswith(_GZIP_SUFFIX) else open
            with opener(found, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
        except FileNotFoundError as exc:
            raise StorageError(f"model file {found}: not found") from exc
        except (OSError, EOFError, zlib.error) as exc:
            raise StorageError(f"model file {found}: cannot be read: {exc}") from exc
        return digest.hexdigest()

    # ------------------------------------------------------------------ housekeeping

    def delete(self, path: str | os.PathLike[str]) -> int:
        """Delete the file of ``path`` (and its compressed variant); return bytes freed.

        A missing file is not an error: it returns 0 and logs it.

        Raises
        ------
        StorageError
            ``path`` lies outside the artifacts folder, or a file cannot be removed.
        """
        freed = 0
        for candidate in self._variants(path):
            freed += self._unlink(candidate)
        if freed == 0:
            logger.info("model file %s was already gone", self.absolute(path))
        return freed

    def _unlink(self, path: Path) -> int:
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise StorageError(f"model file {path}: cannot be deleted: {exc}") from exc
        logger.info("deleted %s (%d bytes)", path, size)
        return size

    def _model_files(self) -> list[Path]:
        if not self.artifacts_dir.is_dir():
            return []
        return sorted(
            p for p in self.artifacts_dir.iterdir() if _MODEL_RE.match(p.name) and p.is_file()
        )

    def compress_old_models(self, days_old: float = 7, *, now: float | None = None) -> dict:
        """Gzip the uncompressed model files last modified more than ``days_old`` days ago.

        Each ``model_<uuid>.pkl`` becomes ``model_<uuid>.pkl.gz`` (written atomically, with
        the original's modification time, so age-based cleanup still counts from when the
        model was written); then the original is removed. The database keeps the
        ``.pkl`` path, hash and size: :meth:`path_of` finds the compressed file and
        :meth:`load` verifies the hash of the decompressed pickle.

        Parameters
        ----------
        days_old : float
            Minimum age in days (by modification time).
        now : float or None
            The current POSIX time (default: now).

        Returns
        -------
        dict
            ``compressed_files`` (int), ``files`` (relative paths of the originals),
            ``bytes_before``, ``bytes_after``, ``saved_bytes`` (ints) and
            ``saved_space_mb`` (float).

        Raises
        ------
        ConfigError
            ``days_old`` is negative or not a number.
        StorageError
            A file cannot be read, written or removed; files done before stay done.
        """
        cutoff = (time.time() if now is None else now) - _check_days(
            "compress_old_models", days_old
        ) * _DAY
        files: list[str] = []
        before = after = 0
        for source in self._model_files():
            if source.name.endswith(_GZIP_SUFFIX):
                continue
            stat = source.stat()
            if stat.st_mtime >= cutoff:
                continue
            packed = source.with_name(source.name + _GZIP_SUFFIX)
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
            "saved_space_mb": (before - after) / _MB,
        }

    def _kept_in_database(self) -> list[str]:
        if self._settings is None:
            raise StorageError(
                "cleanup_old_models: pass keep= (the model files to keep) or make the manager "
                "with ModelFileManager.from_settings(settings), so the database can say which "
                "models are kept"
            )
        from forexgrid import storage

        with storage.session_scope(self._settings) as session:
            return list(storage.referenced_model_files(session, kept_only=True))

    def cleanup_old_models(
        self,
        days_old: float = 30,
        keep: Iterable[str | os.PathLike[str]] | None = None,
        *,
        now: float | None = None,
    ) -> dict:
        """Delete model files last modified more than ``days_old`` days ago, except ``keep``.

        Without ``keep`` the database says what to keep: every model that sits in a best
        list. That needs the settings (a manager made with ``ModelFileManager()`` or
        :meth:`from_settings` has them); a manager made from a bare folder needs ``keep``.

        Parameters
        ----------
        days_old : float
            Minimum age in days (by modification time; compression keeps the original's).
        keep : iterable of path, optional
            Recorded paths never to delete (``.pkl`` or ``.pkl.gz`` form, either variant is
            spared). Default: the kept models in the database.
        now : float or None
            The current POSIX time (default: now).

        Returns
        -------
        dict
            ``deleted_files`` (int), ``files`` (relative paths deleted), ``freed_bytes``
            (int), ``freed_space_mb`` (float) and ``kept_files`` (old files spared because
            they are in ``keep``).

        Raises
        ------
        ConfigError
            ``days_old`` is negative or not a number.
        StorageError
            A path in ``keep`` lies outside the artifacts folder, a file cannot be removed,
            or ``keep`` is missing and the manager has no settings to ask the database.
        """
        cutoff = (time.time() if now is None else now) - _check_days(
            "cleanup_old_models", days_old
        ) * _DAY
        if keep is None:
            keep = self._kept_in_database()
        spared = {_strip_gz(self.relative(p)) for p in keep}
        files: list[str] = []
        freed = kept = 0
        for path in self._model_files():
            try:
                if path.stat().st_mtime >= cutoff:
                    continue
            except FileNotFoundError:
                continue
            if _strip_gz(path.name) in spared:
                kept += 1
                continue
            size = self._unlink(path)
            files.append(path.name)
            freed += size
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
            "freed_space_mb": freed / _MB,
            "kept_files": kept,
        }

    def reconcile(
        self,
        referenced: Mapping[str, str | None],
        *,
        verify_hashes: bool = True,
        grace_seconds: float = 0.0,
        now: float | None = None,
    ) -> ReconcileReport:
        """Make the folder agree with the runs that reference files.

        Deletes model files that no run references and temporary files left by a killed
        writer; reports referenced paths whose file is missing or does not verify. Files
        with names forexgrid does not write are left alone and listed as ``unknown``.

        Parameters
        ----------
        referenced : mapping of path to SHA-256 or None
            Every recorded model path still meant to exist, with its recorded hash (None:
            check existence only).
        verify_hashes : bool
            Hash every referenced file (default). False checks existence only.
        grace_seconds : float
            Spare unreferenced and temporary files modified less than this many seconds
            ago, in case another process is writing them. Default 0: call it when no
            writer is active (the runner does so when it claims a queue).
        now : float or None
            The current POSIX time (default: now).

        Returns
        -------
        ReconcileReport

        Raises
        ------
        StorageError
            A file that should be removed cannot be.
        """
        wanted: dict[str, str | None] = {}
        missing: list[str] = []
        for path, sha in referenced.items():
            try:
                wanted[_strip_gz(self.relative(path))] = sha
            except StorageError as exc:
                # A bad row must not stop the cleanup of everything else; it is reported.
                logger.warning("%s", exc)
                missing.append(os.fspath(path))
        cutoff = (time.time() if now is None else now) - grace_seconds
        removed: list[str] = []
        unknown: list[str] = []
        freed = 0
        entries = sorted(self.artifacts_dir.iterdir()) if self.artifacts_dir.is_dir() else []
        for entry in entries:
            name = entry.name
            if not entry.is_file():
                unknown.append(name)
                continue
            if _MODEL_RE.match(name):
                if _strip_gz(name) in wanted:
                    continue
            elif not is_temp_name(name, "model_"):
                unknown.append(name)
                continue
            try:
                if grace_seconds > 0 and entry.stat().st_mtime > cutoff:
                    continue
            except FileNotFoundError:
                continue
            size = self._unlink(entry)
            removed.append(name)
            freed += size
        corrupt: list[str] = []
        for rel, sha in wanted.items():
            found = self.path_of(rel)
            if not found.is_file():
                missing.append(rel)
            elif verify_hashes and sha is not None and not self.verify(rel, sha):
                corrupt.append(rel)
        report = ReconcileReport(
            removed=tuple(removed),
            freed_bytes=freed,
            missing=tuple(missing),
            corrupt=tuple(corrupt),
            unknown=tuple(unknown),
        )
        if missing or corrupt:
            logger.warning("%s; missing: %s; corrupt: %s", report, missing, corrupt)
        else:
            logger.info("%s", report)
        return report


def _strip_gz(rel: str) -> str:
    return rel[: -len(_GZIP_SUFFIX)] if rel.endswith(_GZIP_SUFFIX) else rel
