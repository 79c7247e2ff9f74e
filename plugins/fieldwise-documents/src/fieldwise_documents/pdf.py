"""PDF: the text layer of each page, with page offsets kept, via pypdf.

pypdf is pure Python (nothing to compile, nothing to go wrong at install) and bounds
its own decompression (``LimitReachedError``), so a PDF bomb fails instead of eating
memory. It raises many kinds of exception on damaged files; every one of them becomes
a ``CorruptDocumentError`` naming the file, so a caller handles one type.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime
from typing import Any

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, LimitReachedError

from fieldwise.document import Document

from .encoding import normalize_newlines
from .errors import (
    CorruptDocumentError,
    DocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    NoTextLayerError,
    UnsafeDocumentError,
)
from .limits import Limits, check_chars, check_size

__all__ = ["load_pdf"]

log = logging.getLogger("fieldwise_documents.pdf")

_DECRYPT_HINT = (
    "Remove the password first (for example `qpdf --decrypt --password=PASSWORD in.pdf "
    "out.pdf`) and load the decrypted copy."
)
_OCR_HINT = (
    "Run OCR on it first (for example `ocrmypdf in.pdf out.pdf`), or send the page "
    "images to a vision-capable model instead of text."
)


def _corrupt(name: str, exc: BaseException) -> CorruptDocumentError:
    detail = str(exc).strip() or type(exc).__name__
    return CorruptDocumentError(
        f"this PDF is damaged or not a PDF ({detail}). Re-export or re-download it; "
        "opening and re-saving it in a PDF viewer often repairs it.",
        name=name,
    )


def _open(data: bytes, name: str) -> PdfReader:
    """Parse the file and unlock it with the empty password when that is all it needs."""
    if not data.strip():
        raise EmptyDocumentError("the file is empty.", name=name)
    if b"%PDF-" not in data[:1024]:
        raise CorruptDocumentError(
            "this is not a PDF: it lacks the %PDF- header. Check the file type.", name=name
        )
    try:
        reader = PdfReader(io.BytesIO(data))
    except LimitReachedError as exc:
        raise _bomb(name, exc) from exc
    except Exception as exc:  # pypdf raises far more than PdfReadError on broken files
        raise _corrupt(name, exc) from exc
    if reader.is_encrypted:
        try:
            # An owner password alone restricts printing or copying, and the user
            # password is empty: such a PDF opens in every viewer and must open here.
            unlocked = reader.decrypt("")
        except DependencyError as exc:
            raise EncryptedDocumentError(
                f"this PDF is encrypted with a scheme that needs the `cryptography` package "
                f"({exc}). Install it (`pip install cryptography`) and try again.",
                name=name,
            ) from exc
        except Exception as exc:
            raise _corrupt(name, exc) from exc
        if unlocked == PasswordType.NOT_DECRYPTED:
            raise EncryptedDocumentError(
                f"this PDF is encrypted and needs a password to open. {_DECRYPT_HINT}",
                name=name,
            )
    return reader


def _bomb(name: str, exc: BaseException) -> UnsafeDocumentError:
    return UnsafeDocumentError(
        f"a compressed stream in this PDF expands past pypdf's safety limit ({exc}); it "
        "may be a decompression bomb. If the file is genuine, split it into smaller PDFs.",
        name=name,
    )


def _has_images(page: Any) -> bool:
    """Whether a page draws image XObjects (directly or one form deep); never raises.

    Used only to word the no-text error: a page of images is almost surely a scan.
    """
    try:
        pending = [page.get("/Resources")]
        for _ in range(2):
            found = []
            for resources in pending:
                resources = resources.get_object() if resources is not None else None
                xobjects = resources.get("/XObject") if resources is not None else None
                if xobjects is None:
                    continue
                for ref in xobjects.get_object().values():
                    xobject = ref.get_object()
                    if xobject.get("/Subtype") == "/Image":
                        return True
                    if xobject.get("/Subtype") == "/Form":
                        found.append(xobject.get("/Resources"))
            pending = found
    except Exception:
        return False
    return False


def _metadata(reader: PdfReader) -> dict[str, Any]:
    """Title, author and the like; a damaged info dictionary just yields fewer keys."""
    found: dict[str, Any] = {}
    try:
        info = reader.metadata
        if info is None:
            return found
        for key in ("title", "author", "subject", "creator", "producer"):
            value = getattr(info, key)
            if isinstance(value, str) and value.strip():
                found[key] = value.strip()
        for key in ("creation_date", "modification_date"):
            value = getattr(info, key)
            if isinstance(value, datetime):
                found[key] = value.isoformat()
    except Exception as exc:  # cosmetic: never fail a load over the info dictionary
        log.debug("unreadable PDF metadata: %s", exc)
    return found


def load_pdf(data: bytes, name: str) -> Document:
    """Read a PDF's text page by page into ``Document.from_pages``.

    A page whose text cannot be extracted is left empty and listed in
    ``metadata["pages_failed"]`` rather than losing the other pages; pages with no
    text are listed in ``metadata["pages_without_text"]`` (partly scanned files).
    """
    limits = Limits.from_env()
    check_size(data, name, limits)
    reader = _open(data, name)
    try:
        pages = list(reader.pages)
    except LimitReachedError as exc:
        raise _bomb(name, exc) from exc
    except DocumentError:
        raise
    except Exception as exc:
        raise _corrupt(name, exc) from exc
    if not pages:
        raise EmptyDocumentError("the PDF has no pages.", name=name)

    texts: list[str] = []
    failed: list[int] = []
    first_error: Exception | None = None
    total = 0
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text() or ""
        except LimitReachedError as exc:
            raise _bomb(name, exc) from exc
        except Exception as exc:  # one bad page must not cost the others
            log.warning("%s: no text from page %d: %s", name, number, exc)
            failed.append(number)
            first_error = first_error or exc
            text = ""
        text = normalize_newlines(text).replace("\x00", "").strip()
        total += len(text) + 2
        check_chars(total, name, limits)
        texts.append(text)

    empty = [number for number, text in enumerate(texts, start=1) if not text]
    if len(empty) == len(texts):
        if first_error is not None and len(failed) == len(texts):
            raise _corrupt(name, first_error) from first_error
        count = f"{len(pages)} page{'s' if len(pages) != 1 else ''}"
        if any(_has_images(page) for page in pages):
            what = f"its {count} hold only images (a scan?), with no text layer"
        else:
            what = f"its {count} have no text layer (text drawn as shapes, or blank pages)"
        raise NoTextLayerError(f"no text can be extracted: {what}. {_OCR_HINT}", name=name)

    metadata = _metadata(reader)
    metadata["page_count"] = len(pages)
    if reader.is_encrypted:
        metadata["encrypted"] = True
    if empty:
        metadata["pages_without_text"] = empty
    if failed:
        metadata["pages_failed"] = failed
    return Document.from_pages(texts, name=name, **metadata)
