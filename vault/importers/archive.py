"""ZIP archives as the services deliver them (``my_spotify_data.zip``, a Google Takeout
archive, Netflix's report), read in place: nothing is ever extracted to disk.

An archive is checked whole before any member is read, and refused (:class:`UnsafeArchive`,
one line) when it is hostile or broken (THREATS rows 25, 30):

* a member whose name is absolute, climbs out (``..``) or holds a NUL or backslash;
* a symbolic link, or an encrypted member;
* more than :data:`MAX_MEMBERS` members;
* a zip bomb: a member over :data:`MAX_MEMBER_BYTES` uncompressed, all members together
  over :data:`MAX_TOTAL_BYTES`, or a member larger than 1 MiB that expands more than
  :data:`MAX_RATIO` times (real JSON, CSV and HTML exports expand 5 to 20 times).

Sizes are the archive's own declarations; Python's reader never returns more than a
member's declared size and checks its CRC at the end, so a member cannot expand past what
was checked. An archive inside the archive is not opened.
"""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import IO, Any, BinaryIO

from vault.errors import MalformedExport, UnsafeArchive

MAX_MEMBERS = 10_000
MAX_MEMBER_BYTES = 4 << 30
MAX_TOTAL_BYTES = 16 << 30
MAX_RATIO = 100
_RATIO_FLOOR = 1 << 20


class Archive:
    """An open, checked ZIP archive; use :func:`opened`."""

    def __init__(self, archive: zipfile.ZipFile, *, filename: str) -> None:
        self._zip = archive
        self.filename = filename
        self.files = [info for info in archive.infolist() if not info.is_dir()]
        self._check()

    def _check(self) -> None:
        if len(self.files) > MAX_MEMBERS:
            raise UnsafeArchive(f"{self.filename} holds more than {MAX_MEMBERS} files")
        total = 0
        for number, info in enumerate(self.files, 1):
            where = f"{self.filename}, file {number}"
            name = info.filename
            parts = PurePosixPath(name).parts
            if (not parts or name.startswith("/") or ".." in parts or "\\" in name
                    or "\0" in name or (len(name) > 1 and name[1] == ":")):
                raise UnsafeArchive(f"{where} has a path outside the archive")
            mode = info.external_attr >> 16
            if info.create_system == 3 and stat.S_ISLNK(mode):
                raise UnsafeArchive(f"{where} is a symbolic link")
            if info.flag_bits & 0x1:
                raise UnsafeArchive(f"{where} is encrypted")
            if info.file_size > MAX_MEMBER_BYTES:
                raise UnsafeArchive(f"{where} expands past {MAX_MEMBER_BYTES >> 30} GiB")
            if (info.file_size > _RATIO_FLOOR
                    and info.file_size > MAX_RATIO * max(info.compress_size, 1)):
                raise UnsafeArchive(f"{where} expands more than {MAX_RATIO} times (a zip bomb)")
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise UnsafeArchive(
                    f"{self.filename} expands past {MAX_TOTAL_BYTES >> 30} GiB in all")

    @contextmanager
    def open(self, info: zipfile.ZipInfo) -> Iterator[BinaryIO]:
        """A member's bytes, streamed; a damaged member is MalformedExport naming it."""
        try:
            with self._zip.open(info) as stream:
                yield io.BufferedReader(_Checked(stream, filename=self.member_name(info)))
        except (zipfile.BadZipFile, NotImplementedError, EOFError, OSError):
            raise MalformedExport(self.member_name(info), None,
                                  "damaged inside the archive (or an unsupported compression)"
                                  ) from None

    def member_name(self, info: zipfile.ZipInfo) -> str:
        return f"{self.filename}:{info.filename}"


class _Checked(io.RawIOBase):
    """A member's stream whose read errors (bad CRC, truncated data) name the member."""

    def __init__(self, stream: IO[bytes], *, filename: str) -> None:
        self._stream = stream
        self._filename = filename

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._stream.read(len(buffer))
        except (zipfile.BadZipFile, EOFError, OSError):
            raise MalformedExport(self._filename, None,
                                  "damaged inside the archive (bad checksum or truncated)"
                                  ) from None
        buffer[:len(data)] = data
        return len(data)


@contextmanager
def opened(stream: BinaryIO, *, filename: str) -> Iterator[Archive]:
    """The checked archive in ``stream`` (a seekable file)."""
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise MalformedExport(filename, None, "not a readable ZIP archive") from None
    with archive:
        yield Archive(archive, filename=filename)
