"""PDF: the text layer of each page, with page offsets kept, via pypdf.

A filled form's values are not in the text layer but in its fields' widgets: after a
page's text come ``Label: value`` lines for the filled fields shown on that page (text,
☒ for a checked box, the chosen radio button or list items), labelled by the field's
tooltip, else its name (labels printed on the page are not paired with fields). Empty,
unchecked, password and hidden fields are left out, a field is listed once, and a value
the page's text already holds as whole words (a flattened form, drawn into the page) is
not repeated; values under four characters are always listed, being too common to tell.
XFA-only forms (values in XML, not widgets) are not read.

pypdf is pure Python (nothing to compile, nothing to go wrong at install) and bounds
its own decompression (``LimitReachedError``), so a PDF bomb fails instead of eating
memory. It raises many kinds of exception on damaged files; every one of them becomes
a ``CorruptDocumentError`` naming the file, so a caller handles one type.
"""

from __future__ import annotations

import io
import logging
import re
from datetime import datetime
from typing import Any

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, LimitReachedError
from pypdf.generic import NameObject

from fieldwise.document import Document

from .encoding import normalize_newlines
from .errors import (
    CorruptDocumentError,
    DocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    NoTextLayerError,
    UnsafeDocumentError,
)
from .limits import ENV_VARS, Limits, check_chars, check_size

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


# Filled forms (AcroForm): the values a viewer shows live in the fields' widget
# annotations, which page.extract_text() does not read.
_FIELD_DEPTH = 32  # a /Parent chain deeper than this, or looping, is not followed further
_INVISIBLE_WIDGET = 2 | 32  # annotation flags Hidden and NoView
_PASSWORD = 1 << 13  # field flags (/Ff)
_RADIO = 1 << 15
_PUSHBUTTON = 1 << 16
_CHECKED = "\u2612"  # ☒, as the DOCX loader draws a checked box
# Shorter values ("3", "Yes") are too common to tell whether the page text shows them.
_SHORT_VALUE = 4
_WORD_BREAKS = re.compile(r"[\s/]+")


def _resolved(value: Any) -> Any:
    return value.get_object() if hasattr(value, "get_object") else value


def _field_chain(widget: Any) -> list[Any]:
    """A widget and the fields above it (``/Parent``), nearest first: a field's
    attributes are inherited, and a widget of a one-widget field is the field itself."""
    chain: list[Any] = []
    node = widget
    while isinstance(node, dict) and len(chain) < _FIELD_DEPTH:
        if any(node is seen for seen in chain):
            break
        chain.append(node)
        node = _resolved(node.get("/Parent"))
    return chain


def _inherited(chain: list[Any], key: str) -> Any:
    for node in chain:
        if key in node:
            return _resolved(node.get(key))
    return None


def _text(value: Any) -> str:
    """A PDF string or name as one line of text (a multi-line value joined with
    `` / ``, as table cells are); a name loses its slash."""
    if isinstance(value, NameObject):
        value = value[1:]
    elif isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return ""
    lines = (line.strip() for line in normalize_newlines(value.replace("\x00", "")).split("\n"))
    return " / ".join(line for line in lines if line)


def _choice_value(chain: list[Any], value: Any) -> str:
    """A list or combo box's chosen items, by the text the box shows for them: an
    ``/Opt`` entry may pair an export value with that text."""
    shown: dict[str, str] = {}
    options = _inherited(chain, "/Opt")
    for option in options if isinstance(options, list) else []:
        option = _resolved(option)
        if isinstance(option, list) and len(option) == 2:
            shown[_text(_resolved(option[0]))] = _text(_resolved(option[1]))
    chosen = value if isinstance(value, list) else [value]
    texts = (_text(_resolved(item)) for item in chosen)
    return ", ".join(shown.get(text, text) for text in texts if text)


def _radio_value(chain: list[Any], state: str) -> str:
    """The chosen radio button's name; where the buttons are numbered, the ``/Opt``
    entry for that number."""
    options = _inherited(chain, "/Opt")
    if state.isdigit() and isinstance(options, list) and int(state) < len(options):
        return _text(_resolved(options[int(state)]))
    return state


def _field_value(chain: list[Any]) -> str:
    """What a field shows, as text: a text field's value, ☒ for a checked box, the
    chosen radio button or list items; "" for empty, unchecked, password and
    signature fields and push buttons."""
    kind = _inherited(chain, "/FT")
    flags = _inherited(chain, "/Ff")
    flags = flags if isinstance(flags, int) else 0
    value = _inherited(chain, "/V")
    if kind == "/Tx":
        return "" if flags & _PASSWORD else _text(value)
    if kind == "/Ch":
        return _choice_value(chain, value)
    if kind != "/Btn" or flags & _PUSHBUTTON:
        return ""
    if value is None:  # some writers only set the widget's appearance state
        value = _resolved(chain[0].get("/AS"))
    state = _text(value)
    if not state or state == "Off":
        return ""
    return _radio_value(chain, state) if flags & _RADIO else _CHECKED


def _field_label(chain: list[Any]) -> str:
    """The field's tooltip (``/TU``, its name for people), else its partial name."""
    for node in chain:
        if "/T" in node:
            return _text(_resolved(node.get("/TU"))) or _text(_resolved(node.get("/T")))
    return ""


def _shows(text: str, value: str) -> bool:
    """Whether the page's text already holds ``value``, as whole words, spacing and
    line breaks aside: a flattened form draws its values into the page."""
    words = [re.escape(word) for word in _WORD_BREAKS.split(value) if word]
    if len(value) < _SHORT_VALUE or not words:
        return False
    return re.search(r"(?<!\w)" + r"[\s/]+".join(words) + r"(?!\w)", text) is not None


def _form_lines(page: Any, text: str, listed: set[int]) -> list[str]:
    """``Label: value`` for each filled field with a visible widget on ``page``, in
    the page's annotation order. A field is listed once, on the first page showing it
    (``listed`` holds those done); one whose value the page text shows is left out."""
    lines: list[str] = []
    annotations = _resolved(page.get("/Annots"))
    for annotation in annotations if isinstance(annotations, list) else []:
        widget = _resolved(annotation)
        if not isinstance(widget, dict) or widget.get("/Subtype") != "/Widget":
            continue
        flags = _resolved(widget.get("/F"))
        if isinstance(flags, int) and flags & _INVISIBLE_WIDGET:
            continue
        chain = _field_chain(widget)
        field = next((node for node in chain if "/T" in node), widget)
        if id(field) in listed:
            continue
        value = _field_value(chain)
        if not value:
            continue
        listed.add(id(field))
        if _shows(text, value):
            continue
        label = _field_label(chain)
        lines.append(f"{label}: {value}" if label else value)
    return lines


def _with_form_values(page: Any, text: str, listed: set[int], name: str, number: int) -> str:
    """The page's text, then its filled form fields' ``Label: value`` lines. Damaged
    form markup loses the values, never the page's text."""
    try:
        lines = _form_lines(page, text, listed)
    except LimitReachedError as exc:
        raise _bomb(name, exc) from exc
    except Exception as exc:
        log.warning("%s: no form values from page %d: %s", name, number, exc)
        return text
    return "\n\n".join(part for part in (text, "\n".join(lines)) if part)


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


#: decoded page content a PDF may always have, whatever its size (a hundred pages of text
#: take a megabyte or two; reading 4 MiB of bare text operators takes ~6 s)
_CONTENT_FLOOR = 4 * 1024 * 1024


class _ContentBudget:
    """What the pages' content streams may decode to, all pages together: the file's size
    times ``max_compression_ratio``, and at least ``_CONTENT_FLOOR``. Reading text parses
    every byte of it (~1.5 s a megabyte of bare text operators), and a few kilobytes of
    Flate, or one stream shared by every page, can make minutes of it; a stream is counted
    at each page that uses it, as it is parsed again there."""

    def __init__(self, packed: int, limits: Limits, name: str) -> None:
        self.left = max(packed * limits.max_compression_ratio, _CONTENT_FLOOR)
        self.limits = limits
        self.name = name

    def spend(self, page: Any) -> None:
        try:
            contents = page.get_contents()
            size = len(contents.get_data()) if contents is not None else 0
        except LimitReachedError as exc:
            raise _bomb(self.name, exc) from exc
        except Exception:  # a broken page: extract_text reports it
            return
        self.left -= size
        if self.left < 0:
            raise DocumentTooLargeError(
                "its pages' content decodes to far more than the file holds (more than "
                f"{self.limits.max_compression_ratio} times its size), which would take "
                "minutes to read; if the file is genuine, raise "
                f"{ENV_VARS['max_compression_ratio']}.",
                name=self.name,
            )


def load_pdf(data: bytes, name: str) -> Document:
    """Read a PDF's text page by page into ``Document.from_pages``; a page's filled
    form fields follow its text as ``Label: value`` lines.

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
    listed: set[int] = set()  # form fields already written (see _form_lines)
    failed: list[int] = []
    first_error: Exception | None = None
    total = 0
    content = _ContentBudget(len(data), limits, name)
    for page in pages:  # all of it first: nothing is parsed of a file refused for its size
        content.spend(page)
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
        text = _with_form_values(page, text, listed, name, number)
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
