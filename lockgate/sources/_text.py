"""What the bytes of a text input say before a reader parses it: an encoding other than
UTF-8 (a UTF-16/32 byte order mark), a file that is only a BOM, line endings mixed within one
file. File sources reject such files whole, or name them in the error, instead of letting
DuckDB misread them."""

from __future__ import annotations

from pathlib import Path

#: byte order marks of text that is not UTF-8 (longest first: UTF-32 LE starts like UTF-16 LE)
_FOREIGN_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def not_utf8_text(path: Path, size: int) -> str | None:
    """Why a CSV/JSON file is rejected whole before DuckDB reads it (None: read it): a UTF-8
    byte order mark alone is an empty file; a UTF-16/32 one (Excel's "Unicode text") would
    be misread as UTF-8 garbage with columns named ''."""
    if size >= 2:
        try:
            with path.open("rb") as f:
                head = f.read(4)
        except OSError:
            return None  # the reader reports it
        if head[:3] == b"\xef\xbb\xbf" and size == 3:
            return "empty file"
        for bom, name in _FOREIGN_BOMS:
            if head.startswith(bom):
                return (
                    f"file is {name} text (byte order mark {bom.hex(' ')}); lockgate reads "
                    "UTF-8: save it as UTF-8"
                )
    return None


def mixed_line_endings(path: Path, sample: int = 1 << 20) -> bool:
    """Whether the start of a text file ends some lines with ``\\r\\n`` and others with a
    bare ``\\n`` (a file concatenated from Windows and Unix parts): DuckDB cannot sniff it."""
    try:
        with path.open("rb") as f:
            head = f.read(sample)
    except OSError:
        return False
    crlf = head.count(b"\r\n")
    return 0 < crlf < head.count(b"\n")
