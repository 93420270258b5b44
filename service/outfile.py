"""Every file the product writes at a user's request (``--out``): one safe way to do it.

``write_new_file(path, data, force=False, db=None, protected=())``:

- never over the database (``db``) or its ``.wal``, nor the token cache (``ADSPEND_TOKEN_CACHE``,
  or ``token_cache.json`` next to the database), nor any path in ``protected`` -- compared by real
  path (symlinks resolved) and by inode (hard links), even with ``force``;
- never over any other existing file unless ``force``;
- atomic: written to a temporary file in the target folder, flushed, then renamed into place
  (without ``force`` by ``link``, which fails if the name appeared meanwhile), so a reader sees
  the old file or the whole new one, never half.

Refusals are :class:`OutFileRefused` (the user's input: exit 2); an OS failure while writing is
:class:`OutFileFailed` (exit 1). Both carry one plain sentence and subclass :class:`OutFileError`
with ``exit_status``.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


class OutFileError(Exception):
    exit_status = 1


class OutFileRefused(OutFileError, ValueError):
    """The target is the database, a protected file, a folder, or exists without --force."""

    exit_status = 2


class OutFileFailed(OutFileError):
    """The operating system refused the write (permissions, a full disk, ...)."""

    exit_status = 1


def protected_paths(db: str | os.PathLike | None = None) -> tuple[list[Path], list[Path]]:
    """(never-write paths, token caches) for a database path: the database, its WAL and the
    token caches (``ADSPEND_TOKEN_CACHE``, and ``token_cache.json`` next to the database)."""
    dbs: list[Path] = []
    caches: list[Path] = []
    for d in {db, os.environ.get("ADSPEND_DB") or None} - {None}:
        p = Path(d)
        dbs += [p, Path(f"{p}.wal")]
        caches.append(p.parent / "token_cache.json")
    try:
        from .token_cache import default_path

        caches.append(default_path())
    except Exception:  # pragma: no cover - the cache path is advisory here
        pass
    if os.environ.get("ADSPEND_TOKEN_CACHE"):
        caches.append(Path(os.environ["ADSPEND_TOKEN_CACHE"]))
    return dbs, caches


def _same(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def check_target(
    path: str | os.PathLike,
    *,
    force: bool = False,
    db: str | os.PathLike | None = None,
    protected: Iterable[str | os.PathLike] = (),
) -> Path:
    """The target as a Path, or OutFileRefused saying why it may not be written."""
    raw = os.fspath(path) if path is not None else ""
    if not str(raw).strip():
        raise OutFileRefused("the output file name is empty; give --out a file name such as report.csv")
    target = Path(raw)
    dbs, caches = protected_paths(db)
    for p in dbs:
        if _same(target, p):
            raise OutFileRefused(f"refusing to write {target}: it is the database; choose another --out file")
    for p in caches + [Path(x) for x in protected]:
        if _same(target, p):
            raise OutFileRefused(
                f"refusing to write {target}: it is the token cache (or another file the "
                "product keeps); choose another --out file"
            )
    if target.is_dir():
        raise OutFileRefused(f"{target} is a folder; give --out a file name inside it")
    if os.path.lexists(target) and not force:
        raise OutFileRefused(f"{target} already exists; choose another --out file or pass --force to replace it")
    if os.path.lexists(target) and not (target.is_file() or target.is_symlink()):
        raise OutFileRefused(f"{target} is not a regular file; choose another --out file")
    return target


def write_new_file(
    path: str | os.PathLike,
    data: bytes,
    *,
    force: bool = False,
    db: str | os.PathLike | None = None,
    protected: Iterable[str | os.PathLike] = (),
) -> Path:
    """Write ``data`` to ``path`` atomically under the rules in the module doc; the Path written."""
    target = check_target(path, force=force, db=db, protected=protected)
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutFileRefused(f"cannot write {target}: a part of {folder} is a file, not a folder") from None
    except OSError as exc:
        raise OutFileFailed(f"cannot create the folder {folder} for {target}: {_reason(exc)}") from None
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(folder))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if the name exists: never a silent overwrite
            except FileExistsError:
                raise OutFileRefused(
                    f"{target} already exists; choose another --out file or pass --force to replace it"
                ) from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                    raise
                if os.path.lexists(target):  # a file system without hard links: check, then rename
                    raise OutFileRefused(
                        f"{target} already exists; choose another --out file or pass --force to replace it"
                    ) from None
                os.replace(tmp, target)
    except NotADirectoryError:
        raise OutFileRefused(f"cannot write {target}: a part of that path is a file, not a folder") from None
    except OutFileError:
        raise
    except OSError as exc:
        raise OutFileFailed(f"cannot write {target}: {_reason(exc)}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return target


def _umask() -> int:
    """The process umask without changing it (os.umask would, briefly, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022
