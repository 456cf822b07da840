"""What an uploaded file must hold, by the type its name declares: a `.png` is a PNG, a `.gz`
gzip data, an IDX file starts with an IDX magic number, a `.zip` is a sound zip archive whose
entries are what their names say (`.png` entries PNGs, ...), and a CSV, TSV or JSON file is
UTF-8 text. Checked while the file streams in (text, first bytes) and once it is on disk
(archives), so a file is never held in memory whole."""

from __future__ import annotations

import codecs
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

__all__ = ["ContentCheck", "ContentError", "suffix_of"]

_HEAD = 16  # enough bytes for every magic number below
_MAX_UNPACKED = 2 * 1024**3  # the image classifier refuses bigger archives too
_IDX_TYPES = frozenset({0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E})
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")  # an archive with entries, an empty one


def _idx(head: bytes) -> bool:
    return len(head) >= 4 and head[:2] == b"\0\0" and head[2] in _IDX_TYPES and head[3] > 0


def _starts(*prefixes: bytes) -> Callable[[bytes], bool]:
    return lambda head: head.startswith(prefixes)


# suffix -> (what it must be, a test of its first bytes)
_MAGIC: dict[str, tuple[str, Callable[[bytes], bool]]] = {
    ".png": ("a PNG image", _starts(b"\x89PNG\r\n\x1a\n")),
    ".jpg": ("a JPEG image", _starts(b"\xff\xd8\xff")),
    ".jpeg": ("a JPEG image", _starts(b"\xff\xd8\xff")),
    ".gif": ("a GIF image", _starts(b"GIF87a", b"GIF89a")),
    ".bmp": ("a BMP image", _starts(b"BM")),
    ".tif": ("a TIFF image", _starts(b"II*\0", b"MM\0*")),
    ".tiff": ("a TIFF image", _starts(b"II*\0", b"MM\0*")),
    ".webp": ("a WebP image", lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP"),
    ".gz": ("gzip data", _starts(b"\x1f\x8b")),
    ".idx": ("an IDX file", _idx),
    ".ubyte": ("an IDX file", _idx),
    ".idx1-ubyte": ("an IDX file", _idx),
    ".idx3-ubyte": ("an IDX file", _idx),
    ".npy": ("a NumPy array file", _starts(b"\x93NUMPY")),
    ".zip": ("a zip archive", _starts(*_ZIP)),
    ".npz": ("a zip archive of NumPy arrays", _starts(*_ZIP)),
}
_TEXT = frozenset({".csv", ".tsv", ".json"})
_ARCHIVES = frozenset({".zip", ".npz"})


def suffix_of(name: str, suffixes: Iterable[str]) -> str | None:
    """The longest of `suffixes` that `name` ends with (case-insensitive), or None."""
    lower = name.lower()
    return next((s for s in sorted(suffixes, key=len, reverse=True) if lower.endswith(s)), None)


class ContentError(Exception):
    """The file is not what its name declares: 415 (another type of file) or 422 (the right
    type, unusable: a corrupt archive, an unsafe entry)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


class ContentCheck:
    """Feed it the chunks of one upload declared as `suffix`, then `finish` with its file."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.head = b""
        self._offset = 0
        self._text = codecs.getincrementaldecoder("utf-8")() if suffix in _TEXT else None

    def feed(self, chunk: bytes) -> None:
        if len(self.head) < _HEAD:
            self.head += chunk[: _HEAD - len(self.head)]
        if self._text is not None:
            if b"\0" in chunk:
                raise ContentError(415, f"a {self.suffix} file must be text; this one is binary")
            self._decode(chunk)
        self._offset += len(chunk)

    def _decode(self, chunk: bytes, final: bool = False) -> None:
        assert self._text is not None
        try:
            self._text.decode(chunk, final)
        except UnicodeDecodeError as exc:
            where = self._offset + exc.start
            raise ContentError(
                415, f"a {self.suffix} file must be UTF-8 text; byte {where} is not"
            ) from None

    def finish(self, path: Path) -> None:
        """The checks that need the whole file (on disk at `path`)."""
        if self._text is not None:
            self._decode(b"", final=True)
        magic = _MAGIC.get(self.suffix)
        if magic is not None and not magic[1](self.head):
            raise ContentError(
                415, f"the file is not {magic[0]}, as its {self.suffix} name says it should be"
            )
        if self.suffix in _ARCHIVES:
            _check_archive(path)


def _check_archive(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            entries = [info for info in zf.infolist() if not info.is_dir()]
            if sum(info.file_size for info in entries) > _MAX_UNPACKED:
                raise ContentError(422, f"the archive unpacks to over {_MAX_UNPACKED} bytes")
            for info in entries:
                name = info.filename
                if name.startswith(("/", "\\")) or ".." in PurePosixPath(name).parts:
                    raise ContentError(422, f"the archive holds an unsafe path {name!r}")
            bad = zf.testzip()  # reads every entry in chunks and checks its CRC
            if bad is not None:
                raise ContentError(422, f"the archive is corrupt: entry {bad!r} fails its CRC")
            for info in entries:
                suffix = suffix_of(info.filename, _MAGIC)
                if suffix is None or suffix in _ARCHIVES:
                    continue
                with zf.open(info) as fh:
                    head = fh.read(_HEAD)
                what, test = _MAGIC[suffix]
                if not test(head):
                    raise ContentError(422, f"the archive entry {info.filename!r} is not {what}")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        # NotImplementedError: a compression method zipfile cannot read
        raise ContentError(422, f"not a valid zip archive ({type(exc).__name__})") from None
    except RuntimeError:  # zipfile's answer to an encrypted entry
        raise ContentError(422, "the zip archive is encrypted") from None
