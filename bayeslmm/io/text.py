"""Reading small text files (IDs, phenotypes, lists) as UTF-8, with one clear error.

A UTF-8 byte-order mark (written by Excel and Notepad) is removed, so the first sample ID
is read as the user sees it; bytes that are not UTF-8 (a Latin-1 export, a binary file given
by mistake) end in a :class:`~bayeslmm.errors.FileFormatError` naming the file, the line
and the byte, never a ``UnicodeDecodeError`` traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

from bayeslmm.errors import FileFormatError

__all__ = ["BOM", "decode_error", "read_lines", "read_text"]

BOM = "\ufeff"


def decode_error(path: str | os.PathLike[str], what: str, raw: bytes,
                 exc: UnicodeDecodeError) -> FileFormatError:
    """The error for ``raw`` (the content of ``path``) failing to decode at ``exc.start``."""
    line = raw[: exc.start].count(b"\n") + 1
    byte = raw[exc.start: exc.start + 1].hex()
    return FileFormatError(
        f"{what} file '{path}' is not UTF-8 text: byte 0x{byte} on line {line}; save it "
        "as UTF-8 (e.g. iconv -f latin1 -t utf-8)")


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """The content of ``path`` as text: UTF-8, without a leading byte-order mark.

    Raises
    ------
    FileFormatError
        The file does not exist, is a folder, or is not UTF-8.
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{what} file '{path}' does not exist")
    if path.is_dir():
        raise FileFormatError(f"{what} file '{path}' is a folder, not a file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise decode_error(path, what, raw, exc) from None
    return text.removeprefix(BOM)


def read_lines(path: str | os.PathLike[str], what: str) -> list[str]:
    """The lines of :func:`read_text` (universal newlines: ``\\n``, ``\\r\\n`` or ``\\r``,
    as Python's text files; no other character ends a line)."""
    return read_text(path, what).replace("\r\n", "\n").replace("\r", "\n").split("\n")
