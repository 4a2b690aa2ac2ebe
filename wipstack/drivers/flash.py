"""The virtual module's flash as a file: a :class:`~at_frontend.store.ConfigStore` that survives kill -9.

:class:`FileStore` keeps the whole store (format: :func:`at_frontend.store.encode_store`) in
one file and replaces it atomically on every save:

1. write the new content to a temporary file in the same directory
   (``.<name>.XXXXXXXX.tmp``, mode 0o600),
2. ``fsync`` it, so its data is on disk before it can become the store,
3. ``os.replace`` it over the store (an atomic rename within one filesystem),
4. ``fsync`` the directory, so the rename itself is durable.

A crash or ``SIGKILL`` at any point therefore leaves either the complete old store or the
complete new one; at worst a stale temporary file remains, and the next successful save
removes it.  The store assumes a single writer: a concurrent save to the same path could
have its temporary file removed as stale and fail with :class:`StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from at_frontend.store import (
    MAX_STORE_SIZE,
    JsonValue,
    StoreUnavailable,
    decode_store,
    encode_store,
)

TEMP_SUFFIX = ".tmp"
FILE_MODE = 0o600

_DIRECTORY_FSYNC_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF})


def _describe(error: OSError) -> str:
    """``strerror`` plus the file name when the OSError carries them, else ``str(error)``."""
    if error.strerror:
        return f"{error.strerror} ({error.filename})" if error.filename else error.strerror
    return str(error) or type(error).__name__


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a write may be partial)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    """Make the directory's entries (a rename, a new file) durable.

    Filesystems or platforms that cannot fsync a directory are tolerated: there is nothing
    more the store can do there.
    """
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        directory_fd = os.open(directory, flags)
    except OSError as error:
        if error.errno in _DIRECTORY_FSYNC_UNSUPPORTED or os.name == "nt":
            return
        raise
    try:
        os.fsync(directory_fd)
    except OSError as error:
        if error.errno not in _DIRECTORY_FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(directory_fd)


class FileStore:
    """A :class:`~at_frontend.store.ConfigStore` backed by one file, written atomically.

    ``load`` returns ``{}`` when the file does not exist, raises
    :class:`~at_frontend.store.StoreUnavailable` when it cannot be read and
    :class:`~at_frontend.store.StoreCorrupt` when its content is invalid.  ``save`` raises
    :class:`~at_frontend.store.StoreUnavailable` on any I/O failure, after removing its
    temporary file; the old store is then untouched.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"FileStore({str(self.path)!r})"

    @property
    def temp_prefix(self) -> str:
        """Name prefix of this store's temporary files (``.<name>.``)."""
        return f".{self.path.name}."

    def stale_temp_files(self) -> list[Path]:
        """Temporary files of this store left in its directory (e.g. by a crash mid-save)."""
        try:
            names = os.listdir(self.path.parent)
        except OSError:
            return []
        prefix = self.temp_prefix
        return sorted(
            self.path.parent / name
            for name in names
            if name.startswith(prefix) and name.endswith(TEMP_SUFFIX) and len(name) > len(prefix) + len(TEMP_SUFFIX)
        )

    def load(self) -> dict[str, dict[str, JsonValue]]:
        """Read and decode the store; ``{}`` if the file does not exist."""
        try:
            with open(self.path, "rb") as store_file:
                blob = store_file.read(MAX_STORE_SIZE + 1)  # one byte more is enough to say "too large"
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise StoreUnavailable(f"cannot read {self.path}: {_describe(error)}") from error
        return decode_store(blob)

    def save(self, sections: Mapping[str, Mapping[str, JsonValue]]) -> None:
        """Replace the store with ``sections`` atomically (temporary file, fsync, rename, fsync dir).

        ``TypeError``/``ValueError`` from :func:`~at_frontend.store.encode_store` (sections that
        are not JSON, a store over the size limit) propagate before anything is written.
        """
        blob = encode_store(sections)
        directory = self.path.parent
        self._ensure_directory(directory)
        try:
            temp_fd, temp_name = tempfile.mkstemp(dir=directory, prefix=self.temp_prefix, suffix=TEMP_SUFFIX)
        except OSError as error:
            raise StoreUnavailable(f"cannot create a temporary file in {directory}: {_describe(error)}") from error
        replaced = False
        try:
            try:
                os.fchmod(temp_fd, FILE_MODE)
                _write_all(temp_fd, blob)
                os.fsync(temp_fd)
            finally:
                os.close(temp_fd)
            os.replace(temp_name, self.path)
            replaced = True
            _fsync_directory(directory)
        except OSError as error:
            if not replaced:
                with contextlib.suppress(OSError):
                    os.unlink(temp_name)
            raise StoreUnavailable(f"cannot write {self.path}: {_describe(error)}") from error
        except BaseException:
            if not replaced:
                with contextlib.suppress(OSError):
                    os.unlink(temp_name)
            raise
        self._remove_stale_temp_files()

    def _ensure_directory(self, directory: Path) -> None:
        """Create the store's directory (and parents) if missing, durably."""
        if directory.is_dir():
            return
        try:
            directory.mkdir(parents=True, exist_ok=True)
            _fsync_directory(directory.parent)
        except OSError as error:
            raise StoreUnavailable(f"cannot create directory {directory}: {_describe(error)}") from error

    def _remove_stale_temp_files(self) -> None:
        """Delete temporary files left by earlier interrupted saves (best effort)."""
        for stale in self.stale_temp_files():
            with contextlib.suppress(OSError):
                stale.unlink()
