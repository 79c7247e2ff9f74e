"""Reading a ``multipart/form-data`` upload from the request stream, into memory, bounded.

Why not the framework's form parsing: it spools every file part to a temporary file before
the route runs. Here the stream is fed chunk by chunk to python-multipart's streaming
parser and the file part is kept in memory (the document loaders need the bytes anyway);
the size cap itself is enforced underneath by ``BodyLimitMiddleware``, so nothing past the
limit is ever read, let alone stored. Text fields and part counts get their own small caps.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import Request

from .errors import ServiceError

FILE_FIELD = "file"
TEXT_FIELDS = ("instructions", "seed")
MAX_TEXT_FIELD_BYTES = 64 * 1024
MAX_PARTS = 16

# The OpenAPI description of the form (the route reads the stream itself, so FastAPI
# cannot infer it from parameters).
OPENAPI_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {
                    FILE_FIELD: {
                        "type": "string",
                        "format": "binary",
                        "description": "the document (PDF, DOCX, HTML, text...); its file "
                        "name's suffix picks the loader",
                    },
                    "instructions": {"type": "string"},
                    "seed": {"type": "integer"},
                },
            }
        }
    },
}


@dataclass
class Upload:
    """The uploaded file and the form's text fields."""

    filename: str
    media_type: str | None
    data: bytes
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class _Part:
    name: str | None = None
    filename: str | None = None
    media_type: str | None = None
    data: bytearray = field(default_factory=bytearray)
    keep: bool = False
    is_file: bool = False


class _Collector:
    """python-multipart callbacks that collect the parts we want and drop the rest."""

    def __init__(self) -> None:
        self.parts: list[_Part] = []
        self.current = _Part()
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.headers: dict[bytes, bytes] = {}

    def on_part_begin(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise ServiceError(400, "bad_request", f"At most {MAX_PARTS} form parts.")
        self.current = _Part()
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[bytes(self.header_field).lower()] = bytes(self.header_value)
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        part = self.current
        name = options.get(b"name")
        part.name = name.decode("utf-8", "replace") if name is not None else None
        filename = options.get(b"filename")
        part.filename = filename.decode("utf-8", "replace") if filename is not None else None
        part.is_file = part.name == FILE_FIELD
        part.keep = part.is_file or part.name in TEXT_FIELDS
        media_type = self.headers.get(b"content-type")
        if media_type:
            part.media_type = parse_options_header(media_type)[0].decode("latin-1") or None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.current
        if not part.keep:
            return
        part.data += data[start:end]
        if not part.is_file and len(part.data) > MAX_TEXT_FIELD_BYTES:
            # as for a body over its cap: the rest is never read, so the connection closes
            raise ServiceError(
                413,
                "payload_too_large",
                f"Form field {part.name!r} is over 64 KiB.",
                headers={"Connection": "close"},
            )

    def on_part_end(self) -> None:
        self.parts.append(self.current)


async def read_upload(request: Request) -> Upload:
    """Parse the request's multipart body; 415 when it is not multipart, 400 when broken,
    422 when the form's fields are missing, repeated or not text.

    A body cut off before its closing ``--boundary--`` is broken too (400), whatever parts
    came through: python-multipart's ``finalize()`` does not check that the parser reached
    its end, so it is checked here (else a truncated upload read as "no file", 422, or as
    a complete file)."""
    media_type, options = parse_options_header(request.headers.get("content-type"))
    if media_type != b"multipart/form-data":
        raise ServiceError(415, "unsupported_media_type", "Send the file as multipart/form-data.")
    boundary = options.get(b"boundary")
    if not boundary:
        raise ServiceError(400, "bad_request", "The multipart Content-Type has no boundary.")
    collector = _Collector()
    try:
        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": collector.on_part_begin,
                "on_part_data": collector.on_part_data,
                "on_part_end": collector.on_part_end,
                "on_header_field": collector.on_header_field,
                "on_header_value": collector.on_header_value,
                "on_header_end": collector.on_header_end,
                "on_headers_finished": collector.on_headers_finished,
            },
        )
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise ServiceError(400, "bad_request", f"Malformed multipart body: {exc}") from None
    if parser.state != MultipartState.END:
        raise ServiceError(
            400, "bad_request", "Malformed multipart body: it ends before its closing boundary."
        )
    return _assemble(collector.parts)


def _assemble(parts: list[_Part]) -> Upload:
    files = [p for p in parts if p.is_file]
    if not files:
        raise ServiceError(422, "validation_error", "file: Field required", field=FILE_FIELD)
    if len(files) > 1:
        raise _invalid(FILE_FIELD, "send exactly one file")
    upload = files[0]
    if upload.filename is None:
        raise _invalid(FILE_FIELD, "must be a file part (with a filename)")
    if not upload.data:
        raise ServiceError(400, "bad_request", "The uploaded file is empty.", field=FILE_FIELD)
    fields: dict[str, str] = {}
    for part in parts:
        if not part.keep or part.is_file or part.name is None:
            continue
        if part.name in fields:
            raise _invalid(part.name, "must be sent once")
        try:
            fields[part.name] = part.data.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid(part.name, "must be UTF-8 text") from None
    media_type = upload.media_type
    if media_type == "application/octet-stream":
        media_type = None  # says nothing: let the file name's suffix decide
    return Upload(_safe_name(upload.filename), media_type, bytes(upload.data), fields)


def _invalid(field: str, problem: str) -> ServiceError:
    return ServiceError(422, "validation_error", f"{field}: {problem}", field=field)


def _safe_name(filename: str | None) -> str:
    """The base name only (no directories), bounded, without control or format characters
    (a line break in it would forge lines in the logs its errors reach); ``upload`` when
    none was sent."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    name = "".join(c for c in name if unicodedata.category(c) not in _UNPRINTABLE).strip()
    return name[-200:] if name else "upload"


#: control (Cc), format (Cf), line and paragraph separator (Zl, Zp) characters
_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp"})
