"""Where model files live: names, paths relative to the artifacts folder, variants.

Names in the artifacts folder::

    model_<run_uuid>_<attempt>.pkl      a fitted model (one per run attempt)
    model_<run_uuid>.pkl                the same, written before attempts were named
    <either>.gz                         the same pickle, gzip-compressed later
    .model_<run_uuid>_<attempt>.pkl.pending
                                        written, waiting for its run to be recorded
    .model_<...>.<8 hex>.tmp            a compression in progress, or left by a kill

Every path the database records is relative to the folder (so a workspace can be moved);
a path outside the folder is refused, so a bad database row can never make forexgrid read
or delete an unrelated file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from forexgrid._atomic import is_temp_name
from forexgrid.exceptions import StorageError

GZIP_SUFFIX = ".gz"
PENDING_SUFFIX = ".pending"
MODEL_RE = re.compile(r"^model_[A-Za-z0-9][A-Za-z0-9_-]*\.pkl(?:\.gz)?$")
_PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_ATTEMPT_RE = re.compile(r"^[0-9a-f]{8,32}$")
# A run's UUID inside any name forexgrid writes (model, pending or temporary).
_UUID_IN_NAME = re.compile(
    r"model_(?P<uuid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)


def strip_gz(rel: str) -> str:
    """The recorded (uncompressed) form of a model file name."""
    return rel[: -len(GZIP_SUFFIX)] if rel.endswith(GZIP_SUFFIX) else rel


def is_pending_name(name: str) -> bool:
    """Whether ``name`` is a written model waiting for its run to be recorded."""
    return (
        name.startswith(".")
        and name.endswith(PENDING_SUFFIX)
        and MODEL_RE.match(name[1 : -len(PENDING_SUFFIX)]) is not None
    )


def is_temporary_name(name: str) -> bool:
    """Whether ``name`` is a pending model or a temporary file of a model write."""
    return is_pending_name(name) or is_temp_name(name, "model_")


def run_uuid_in(name: str) -> str | None:
    """The run UUID a file name forexgrid wrote carries (lower case), or None."""
    match = _UUID_IN_NAME.search(name)
    return match["uuid"].lower() if match else None


class Layout:
    """The artifacts folder and the mapping between recorded paths and files in it."""

    def __init__(self, artifacts_dir: str | os.PathLike[str]) -> None:
        self.artifacts_dir = Path(os.path.abspath(Path(artifacts_dir).expanduser()))

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` as the POSIX path relative to the folder; StorageError if outside it."""
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
        """The absolute location of ``path`` (relative, or absolute inside the folder)."""
        return self.artifacts_dir / self.relative(path)

    def variants(self, recorded_path: str | os.PathLike[str]) -> list[Path]:
        """The uncompressed and compressed files that may hold ``recorded_path``."""
        plain = self.absolute(strip_gz(self.relative(recorded_path)))
        return [plain, plain.with_name(plain.name + GZIP_SUFFIX)]

    def path_of(self, recorded_path: str | os.PathLike[str]) -> Path:
        """The file holding ``recorded_path``: itself, else its ``.gz``, else itself."""
        plain, packed = self.variants(recorded_path)
        if plain.is_file():
            return plain
        return packed if packed.is_file() else plain

    def pending_of(self, recorded_path: str | os.PathLike[str]) -> Path:
        """The pending file a model is written to before its run is recorded."""
        plain = self.absolute(strip_gz(self.relative(recorded_path)))
        return plain.with_name(f".{plain.name}{PENDING_SUFFIX}")

    def target(self, run_uuid: str, attempt: str | None = None) -> Path:
        """The final file of a run's model (of one attempt, when ``attempt`` is given)."""
        if not isinstance(run_uuid, str) or not _PART_RE.match(run_uuid):
            raise StorageError(
                f"run_uuid must be letters, digits, '-' or '_' (a file-name part), "
                f"got {run_uuid!r}"
            )
        if attempt is None:
            return self.artifacts_dir / f"model_{run_uuid}.pkl"
        if not isinstance(attempt, str) or not _ATTEMPT_RE.match(attempt):
            raise StorageError(f"model file attempt must be 8 to 32 hex digits, got {attempt!r}")
        return self.artifacts_dir / f"model_{run_uuid}_{attempt}.pkl"

    def model_files(self) -> list[Path]:
        """The model files in the folder (compressed or not), sorted."""
        if not self.artifacts_dir.is_dir():
            return []
        return sorted(
            p for p in self.artifacts_dir.iterdir() if MODEL_RE.match(p.name) and p.is_file()
        )
