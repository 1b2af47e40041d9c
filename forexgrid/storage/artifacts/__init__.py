"""Model files: pickles in the artifacts folder, written safely and verified on load.

The database records, per run, the file's path *relative to the artifacts folder* (so a
workspace can be moved), its SHA-256 and its size, both of the uncompressed pickle (also
after compression). Nothing is unpickled unless its bytes match them.

The concerns live in small modules, none of which queries the database (the caller passes
in what the database says):

- :mod:`._layout`: names and paths, and which names forexgrid writes;
- :mod:`._write`: staged writes under a pending name, promoted once the run is recorded;
- :mod:`._read`: size- and hash-checked streaming reads, before any unpickling;
- :mod:`._retention`: compression and age-based cleanup;
- :mod:`._reconcile`: making the folder agree with the database without touching the
  files of a live runner.

:class:`ModelFileManager` puts them behind one object, as the user guide uses it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forexgrid.exceptions import StorageError
from forexgrid.storage.artifacts import _read, _reconcile, _retention, _write
from forexgrid.storage.artifacts._layout import Layout
from forexgrid.storage.artifacts._read import FileCheck, check_sha
from forexgrid.storage.artifacts._reconcile import ReconcileReport, Recorded
from forexgrid.storage.artifacts._write import PICKLE_PROTOCOL, ModelFile, StagedModel

if TYPE_CHECKING:
    from forexgrid.config import Settings

__all__ = [
    "PICKLE_PROTOCOL",
    "FileCheck",
    "ModelFile",
    "ModelFileManager",
    "ReconcileReport",
    "Recorded",
    "StagedModel",
]


def _kept_in_database(settings: Settings) -> Callable[[], list[str]]:
    def kept() -> list[str]:
        from forexgrid import storage

        with storage.session_scope(settings) as session:
            return list(storage.runs.referenced_model_files(session, kept_only=True))

    return kept


def _recorded(value: Recorded | tuple | str | None) -> Recorded:
    if isinstance(value, Recorded):
        return value
    if isinstance(value, tuple):
        return Recorded(*value)
    return Recorded(sha256=value)


class ModelFileManager:
    """Save, load, verify, compress and clean up the model files of one workspace.

    Parameters
    ----------
    artifacts_dir : path or None
        The artifacts folder; None uses ``load_config(None).artifacts_path``. It is created
        by the first write; the other methods treat a missing folder as empty.
    settings : Settings, optional
        With settings (and no ``kept_files``), :meth:`cleanup_old_models` asks the
        workspace's database which models are kept.
    kept_files : callable, optional
        Returns the recorded paths of the kept models (the database lookup, passed in).

    Notes
    -----
    Paths returned and accepted are relative to the folder (``model_<uuid>_<attempt>.pkl``).
    Absolute paths inside the folder are accepted too; a path outside it is refused.
    """

    def __init__(
        self,
        artifacts_dir: str | os.PathLike[str] | None = None,
        *,
        settings: Settings | None = None,
        kept_files: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        if artifacts_dir is None:
            if settings is None:
                from forexgrid.config import load_config

                settings = load_config(None)
            artifacts_dir = settings.artifacts_path
        if kept_files is None and settings is not None:
            kept_files = _kept_in_database(settings)
        self._kept_files = kept_files
        self._layout = Layout(artifacts_dir)
        self.artifacts_dir = self._layout.artifacts_dir

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelFileManager:
        """Return a manager of ``settings.artifacts_path`` that knows the kept models."""
        return cls(settings.artifacts_path, settings=settings)

    def __repr__(self) -> str:
        return f"ModelFileManager({str(self.artifacts_dir)!r})"

    # ------------------------------------------------------------------------- paths

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` as the POSIX path relative to the folder.

        Raises
        ------
        StorageError
            ``path`` is empty or lies outside the artifacts folder.
        """
        return self._layout.relative(path)

    def absolute(self, path: str | os.PathLike[str]) -> Path:
        """The absolute location of ``path`` (StorageError outside the folder)."""
        return self._layout.absolute(path)

    def path_of(self, recorded_path: str | os.PathLike[str]) -> Path:
        """The file that holds ``recorded_path``: itself, else its ``.gz`` variant (else
        the uncompressed path, which does not exist)."""
        return self._layout.path_of(recorded_path)

    # ------------------------------------------------------------------- write

    def stage(self, model: Any, run_uuid: str, attempt: str) -> StagedModel:
        """Write ``model`` (or its pickle's bytes) under its pending name; see
        :mod:`forexgrid.storage.artifacts._write`. Record ``staged.file``, then
        :meth:`promote` it (or :meth:`discard` it if the run was not recorded).

        Raises
        ------
        StorageError
            Unsafe names, an unpicklable model, or the file cannot be written.
        """
        return _write.stage(self._layout, model, run_uuid, attempt)

    def promote(self, staged: StagedModel) -> None:
        """Rename a staged model to its final name (its run is recorded)."""
        _write.promote(staged)

    def discard(self, staged: StagedModel) -> None:
        """Remove a staged model whose run was not recorded."""
        _write.discard(staged)

    def save(self, model: Any, run_uuid: str, attempt: str | None = None) -> ModelFile:
        """Write ``model`` (pickle protocol 5) under its final name at once.

        Without ``attempt`` the file is ``model_<run_uuid>.pkl`` and replaces an earlier one
        of that name. The pickle is streamed to a pending file, hashed on the way, fsynced
        and renamed, so the file under the final name is always complete.

        Returns
        -------
        ModelFile
            The relative path, SHA-256 and size to record.

        Raises
        ------
        StorageError
            Unsafe ``run_uuid``, an unpicklable model, or the file cannot be written. No
            partial file is left under the final name.
        """
        return _write.save(self._layout, model, run_uuid, attempt)

    def save_bytes(self, payload: bytes | bytearray | memoryview, run_uuid: str) -> ModelFile:
        """Write an already pickled model as :meth:`save` does (the bytes as they are)."""
        return _write.save(self._layout, payload, run_uuid)

    # -------------------------------------------------------------------- read

    def load(
        self, path: str | os.PathLike[str], sha256: str, size_bytes: int | None = None
    ) -> Any:
        """Return the model in ``path`` after checking its size and SHA-256, streaming.

        Parameters
        ----------
        path : path
            The recorded path; the ``.gz`` variant is found by :meth:`path_of`.
        sha256 : str
            The recorded hex SHA-256 of the uncompressed pickle.
        size_bytes : int, optional
            The recorded size of the uncompressed pickle: reading stops past it.

        Raises
        ------
        StorageError
            The file is missing or unreadable, cannot be decompressed, its size or hash
            differs from the record (the message names the file and both values; nothing
            is unpickled), or the verified pickle cannot be unpickled.
        """
        expected = check_sha(str(path), sha256)
        return _read.load_file(self.path_of(path), expected, size_bytes)

    def check(
        self, path: str | os.PathLike[str], sha256: str, size_bytes: int | None = None
    ) -> FileCheck:
        """The state of the file of ``path`` against its record (never raises for a bad
        file; StorageError for a path outside the folder or a malformed hash)."""
        expected = check_sha(str(path), sha256)
        return _read.check_file(self.path_of(path), expected, size_bytes)

    def verify(
        self, path: str | os.PathLike[str], sha256: str, size_bytes: int | None = None
    ) -> bool:
        """Whether the file of ``path`` exists and matches its recorded hash (and size).

        False for a missing, unreadable or undecompressable file and a malformed
        ``sha256``; StorageError for a path outside the folder.
        """
        self.relative(path)  # outside the folder is an error, not a False
        try:
            return self.check(path, sha256, size_bytes).ok
        except StorageError:
            return False

    # ------------------------------------------------------------------ housekeeping

    def delete(self, path: str | os.PathLike[str]) -> int:
        """Delete the file of ``path`` (and its compressed variant); return bytes freed.

        A missing file is not an error: it returns 0.
        """
        return _retention.delete(self._layout, path)

    def compress_old_models(self, days_old: float = 7, *, now: float | None = None) -> dict:
        """Gzip the uncompressed model files last modified more than ``days_old`` days ago.

        Returns
        -------
        dict
            ``compressed_files``, ``files`` (names of the originals), ``bytes_before``,
            ``bytes_after``, ``saved_bytes`` and ``saved_space_mb``.

        Raises
        ------
        ConfigError
            ``days_old`` is negative or not a number.
        StorageError
            A file cannot be read, written or removed; files done before stay done.
        """
        return _retention.compress_old(self._layout, days_old, now)

    def cleanup_old_models(
        self,
        days_old: float = 30,
        keep: Iterable[str | os.PathLike[str]] | None = None,
        *,
        now: float | None = None,
    ) -> dict:
        """Delete model files last modified more than ``days_old`` days ago, except ``keep``.

        Without ``keep``, the kept models in the database are spared (a manager made with
        ``ModelFileManager()`` or :meth:`from_settings` can ask; one made from a bare folder
        needs ``keep``).

        Returns
        -------
        dict
            ``deleted_files``, ``files``, ``freed_bytes``, ``freed_space_mb`` and
            ``kept_files`` (old files spared because they are kept).

        Raises
        ------
        ConfigError
            ``days_old`` is negative or not a number.
        StorageError
            A path in ``keep`` lies outside the folder, a file cannot be removed, or
            ``keep`` is missing and the manager cannot ask the database.
        """
        _retention.check_days("cleanup_old_models", days_old)
        if keep is None:
            if self._kept_files is None:
                raise StorageError(
                    "cleanup_old_models: pass keep= (the model files to keep) or make the "
                    "manager from the settings (from_settings(settings)), so the database "
                    "can say which models are kept"
                )
            keep = self._kept_files()
        return _retention.cleanup_old(self._layout, days_old, keep, now)

    def reconcile(
        self,
        referenced: Mapping[str, Recorded | str | None],
        *,
        verify_hashes: bool = True,
        grace_seconds: float = 0.0,
        protected: Collection[str] = (),
        expendable: Collection[str] = (),
        temp_grace_seconds: float | None = None,
        now: float | None = None,
    ) -> ReconcileReport:
        """Make the folder agree with the runs that reference files.

        Parameters
        ----------
        referenced
            Every recorded path still meant to exist, with its :class:`Recorded` hash and
            size (a ``(sha256, size)`` tuple, a bare hash, or None to check existence only,
            are accepted).
        verify_hashes
            Check every referenced file's size and hash (default).
        grace_seconds
            Spare unreferenced model files modified less than this many seconds ago.
        protected
            Run UUIDs of live runners: their files are never touched.
        expendable
            Run UUIDs whose unreferenced files go whatever their age (the caller's queue).
        temp_grace_seconds
            Spare temporary and pending files younger than this (default:
            ``grace_seconds``).
        now
            The current POSIX time (default: now).

        Returns
        -------
        ReconcileReport
        """
        records = {path: _recorded(value) for path, value in referenced.items()}
        return _reconcile.reconcile(
            self._layout,
            records,
            protected={p.lower() for p in protected},
            expendable={p.lower() for p in expendable},
            temp_grace_seconds=grace_seconds if temp_grace_seconds is None else temp_grace_seconds,
            unreferenced_grace_seconds=grace_seconds,
            verify_hashes=verify_hashes,
            now=now,
        )
