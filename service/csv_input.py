"""What every CSV import shares (accounts, budgets, revenue; and the size-capped read of any
imported file, exchange rates included): read at most a size cap, insist on UTF-8, and check the
header against the required and optional columns. Each importer passes its own error class, so
its messages and exit status stay its own; the rows themselves are checked by the importer."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

CHUNK = 1 << 20


def read_capped(path: str | Path, limit: int, error: type[Exception]) -> bytes:
    """The file's bytes, read in chunks and refused as soon as it passes ``limit`` (so
    ``/dev/zero`` or a huge file costs at most ``limit`` bytes of memory, never all of it)."""
    chunks: list[bytes] = []
    total = 0
    try:
        with open(path, "rb") as fh:
            while True:
                chunk = fh.read(CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise error(f"the file is larger than {limit // (1024 * 1024)} MB; split it")
                chunks.append(chunk)
    except FileNotFoundError:
        raise error(f"no such file: {path}") from None
    except IsADirectoryError:
        raise error(f"{path} is a directory, not a CSV file") from None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    return b"".join(chunks)


def open_table(
    data: bytes, required: Sequence[str], optional: Sequence[str], expected: str, error: type[Exception], limit: int
) -> tuple[Iterator[list[str]], list[str]]:
    """A CSV reader positioned after a checked header, and the header's column names (lower case).

    ``expected`` describes the header for the messages (``store_id,month,amount (optional
    platform)``). The text is checked as UTF-8 whole first (the message names the byte) and then
    read as a stream, so no second full copy of it is kept."""
    if len(data) > limit:
        raise error(f"the file is larger than {limit // (1024 * 1024)} MB; split it")
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"the file is not UTF-8 (byte {exc.start}); save it as UTF-8 CSV and import again") from None
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise error(f"the file is empty; expected a header {expected}") from None
    except csv.Error as exc:
        raise error(f"the header is not valid CSV ({exc})") from None
    cols = [h.strip().lower() for h in header]
    missing = [c for c in required if c not in cols]
    if missing:
        raise error(f"the header lacks {', '.join(missing)}; expected {expected}")
    allowed = (*required, *optional)
    unknown = [c for c in cols if c not in allowed]
    if unknown:
        raise error(f"unknown column(s) {', '.join(u[:40] for u in unknown)[:200]}; allowed: {', '.join(allowed)}")
    if len(set(cols)) != len(cols):
        raise error("the header names a column twice")
    return reader, cols
