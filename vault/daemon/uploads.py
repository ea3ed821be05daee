"""The dashboard's one upload form, read from its ``multipart/form-data`` body (RFC 7578).

The daemon does not carry a general multipart parser (python-multipart is not among its
dependencies) and needs none: the *My data* form sends a few short text fields and one
file, the body is already bounded by the guard's limit for its path, and anything that is
not that shape is refused whole — a form that does not parse imports nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vault import errors

MAX_PARTS = 8
MAX_FIELD_BYTES = 1024
#: RFC 2046 §5.1.1: a boundary is 1 to 70 characters from this set.
_BOUNDARY = re.compile(r"""^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$""")
_DISPOSITION_PARAM = re.compile(r';\s*(name|filename)="([^"]*)"')


class MalformedUpload(errors.InputError):
    hint = "choose the file again and upload it from the My data page"


class UploadTooLarge(MalformedUpload):
    hint = "import it with `vault import FILE` instead"


@dataclass(frozen=True)
class Upload:
    """The form's text fields and its one file (name as the browser sent it, and bytes)."""

    fields: dict[str, str]
    filename: str
    content: bytes


def boundary_of(content_type: str) -> bytes:
    """The boundary parameter of a ``multipart/form-data`` Content-Type."""
    media_type, _, params = content_type.partition(";")
    if media_type.strip().lower() != "multipart/form-data":
        raise MalformedUpload("the upload must be sent as multipart/form-data")
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary":
            value = value.strip().removeprefix('"').removesuffix('"')
            if _BOUNDARY.match(value):
                return value.encode("ascii")
    raise MalformedUpload("the upload's Content-Type has no valid boundary")


def parse(body: bytes, content_type: str, *, max_file_bytes: int, file_field: str = "file"
          ) -> Upload:
    """The fields and the file ``file_field`` of ``body``; :class:`MalformedUpload` for
    anything else (a missing or second file, too many parts, a long or non-UTF-8 field),
    :class:`UploadTooLarge` for a file over ``max_file_bytes``."""
    delimiter = b"--" + boundary_of(content_type)
    end = body.rfind(b"\r\n" + delimiter + b"--")
    if not body.startswith(delimiter + b"\r\n") or end < 0:
        raise MalformedUpload("the upload is not a complete multipart/form-data body")
    parts = body[len(delimiter) + 2: end].split(b"\r\n" + delimiter + b"\r\n")
    if len(parts) > MAX_PARTS:
        raise MalformedUpload(f"the upload has more than {MAX_PARTS} parts")
    fields: dict[str, str] = {}
    found: tuple[str, bytes] | None = None
    for part in parts:
        head, separator, content = part.partition(b"\r\n\r\n")
        if not separator:
            raise MalformedUpload("a part of the upload has no headers")
        name, filename = _disposition(head)
        if filename is not None:
            if name != file_field or found is not None:
                raise MalformedUpload(f"the upload must hold exactly one file, as {file_field!r}")
            found = (filename, content)
        else:
            if len(content) > MAX_FIELD_BYTES or name in fields:
                raise MalformedUpload(f"the upload's field {name!r} is too long or repeated")
            try:
                fields[name] = content.decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedUpload(f"the upload's field {name!r} is not UTF-8") from None
    if found is None or not found[0]:  # a browser sends filename="" when none was chosen
        raise MalformedUpload("the upload holds no file: choose one first")
    filename, content = found
    if len(content) > max_file_bytes:
        raise UploadTooLarge(f"{filename} is larger than {max_file_bytes // 2**20} MiB, the "
                             "most the dashboard takes: import it with `vault import FILE`")
    return Upload(fields=fields, filename=filename, content=content)


def _disposition(head: bytes) -> tuple[str, str | None]:
    """The part's ``name`` and ``filename`` (None for a text field)."""
    for line in head.decode("utf-8", "replace").split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-disposition":
            kind, _, _ = value.partition(";")
            params = dict(_DISPOSITION_PARAM.findall(value))
            if kind.strip().lower() == "form-data" and "name" in params:
                return params["name"], params.get("filename")
    raise MalformedUpload("a part of the upload has no form-data name")
