"""CSV bytes for accounting import files, read back, and written to disk atomically.

Encoding: UTF-8 *without* a byte order mark. Xero's importer accepts a file with or without one
(it strips the BOM before parsing); QuickBooks Online has been reported to misread the first
column header of a file that starts with one (splitforge.app/blog/accounting-csv-encoding-fix,
"QuickBooks Online rejects the BOM prefix ... Xero accepts the same file because it strips the
BOM before parsing"). Reading tolerates a BOM, so a file re-saved by a spreadsheet still parses.

Line endings: ``\\r\\n`` after every record, as RFC 4180 specifies and as Python's csv module
writes by default; both importers read it. A line break *inside* a cell stays as written, in
a quoted field. Quoting is ``csv.QUOTE_MINIMAL``: only cells holding a comma, a quote or a line
break are quoted. Rendering is a pure function of its input, so the same rows always give
byte-identical output, which is what lets ``write_atomically`` skip a file that is unchanged.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

ENCODING = "utf-8"
LINE_END = "\r\n"
_NEW_FILE_MODE = 0o666  # narrowed by the process umask, as for any file the user creates
_O_BINARY: int = getattr(os, "O_BINARY", 0)  # Windows only: no newline translation


def render_csv(columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> bytes:
    """The header and one record per row, UTF-8 without BOM, ``\\r\\n`` line endings.

    A row may leave columns out (they are written empty); a key that is not a column is a
    ValueError, so a misspelt column never silently vanishes.
    """
    if len(set(columns)) != len(columns):
        raise ValueError("a column is named twice")
    known = set(columns)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator=LINE_END, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    for number, row in enumerate(rows, start=1):
        unknown = sorted(set(row) - known)
        if unknown:
            raise ValueError(f"row {number}: unknown columns {', '.join(map(repr, unknown))}")
        writer.writerow([row.get(column, "") for column in columns])
    return buffer.getvalue().encode(ENCODING)


def read_csv(data: bytes, columns: Sequence[str], *, title: str) -> list[dict[str, str]]:
    """Rows of a file written by ``render_csv`` with exactly these ``columns``.

    A BOM and either line ending are accepted. A different header, a record with the wrong
    number of cells, or text that is not UTF-8 is a ValueError naming the line.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(f"{title}: line {line}: not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        records = [(reader.line_num, cells) for cells in reader]
    except csv.Error as exc:
        raise ValueError(f"{title}: line {reader.line_num}: {exc}") from None
    if not records:
        raise ValueError(f"{title}: the file is empty (no header row)")
    header = records[0][1]
    if header != list(columns):
        raise ValueError(
            f"{title}: line 1: unexpected header {','.join(header)!r}; "
            f"expected {','.join(columns)!r}"
        )
    rows: list[dict[str, str]] = []
    for line, cells in records[1:]:
        if len(cells) != len(columns):
            raise ValueError(
                f"{title}: line {line}: {len(cells)} cells where the header has {len(columns)}"
            )
        rows.append(dict(zip(columns, cells, strict=True)))
    return rows


def write_atomically(path: Path, data: bytes) -> bool:
    """Put ``data`` at ``path`` all at once; False (file untouched) when it already holds it.

    The bytes go to a temporary file in the same directory (so the rename cannot cross file
    systems), are flushed and fsynced, and replace ``path`` with ``os.replace``, which is atomic
    on POSIX and Windows: a reader sees the old file or the new one, never a part. The directory
    is fsynced afterwards where the platform allows, so the rename survives a power cut. If
    anything fails before the rename, the temporary file is removed and ``path`` is as it was.
    (A process killed outright can leave a ``.<name>.<hex>.tmp`` file beside it, never a
    half-written ``path``.) An existing file's permission bits are kept.
    """
    try:
        current = path.stat()
    except FileNotFoundError:
        mode: int | None = None
    else:
        if current.st_size == len(data) and path.read_bytes() == data:
            return False
        mode = current.st_mode & 0o7777
    temp = _temporary_beside(path)
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, _NEW_FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    _fsync_directory(path.parent)
    return True


def _temporary_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX); a no-op where that is impossible."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return
    try:
        # some file systems refuse fsync on a directory; the data itself is already synced
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
