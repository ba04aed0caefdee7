"""Evidence file checks: size limit, and a type allow-list judged on the content, not the name."""

import codecs
import hashlib
from dataclasses import dataclass
from pathlib import PurePath

import filetype
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

# Detected MIME type (by content) -> file-name extensions that may carry it.
ALLOWED_BINARY: dict[str, frozenset[str]] = {
    "application/pdf": frozenset({"pdf"}),
    "image/png": frozenset({"png"}),
    "image/jpeg": frozenset({"jpg", "jpeg"}),
    "image/gif": frozenset({"gif"}),
    "image/webp": frozenset({"webp"}),
    "application/zip": frozenset({"zip"}),
    "application/gzip": frozenset({"gz", "tgz"}),
    "application/x-7z-compressed": frozenset({"7z"}),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": frozenset({"docx"}),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": frozenset({"xlsx"}),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": frozenset({"pptx"}),
    "application/vnd.oasis.opendocument.text": frozenset({"odt"}),
    "application/vnd.oasis.opendocument.spreadsheet": frozenset({"ods"}),
    "application/vnd.tcpdump.pcap": frozenset({"pcap", "pcapng", "cap"}),
}
# Plain-text evidence (logs, exports): accepted only when the whole file is UTF-8 text.
TEXT_EXTENSIONS: dict[str, str] = {
    "txt": "text/plain",
    "log": "text/plain",
    "csv": "text/csv",
    "json": "application/json",
    "eml": "message/rfc822",
}
_PCAP_MAGIC = (
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a",
)


@dataclass(frozen=True)
class CheckedFile:
    content_type: str
    size: int
    sha256: str
    name: str


def allowed_extensions() -> list[str]:
    names = {ext for exts in ALLOWED_BINARY.values() for ext in exts} | set(TEXT_EXTENSIONS)
    return sorted(names)


def _detect(head: bytes) -> str | None:
    if head.startswith(_PCAP_MAGIC):
        return "application/vnd.tcpdump.pcap"
    kind = filetype.guess(head)
    return kind.mime if kind else None


def _is_text(upload: UploadedFile) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for chunk in upload.chunks():
            if b"\x00" in chunk:
                return False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def check_upload(upload: UploadedFile) -> CheckedFile:
    """Return the checked file's type, size and sha256, or raise ValidationError with a clear message."""
    limit = settings.EVIDENCE_MAX_BYTES
    if upload.size is None or upload.size > limit:
        raise ValidationError(
            _("The file is too large (%(size)s); the limit is %(limit)s.")
            % {"size": filesizeformat(upload.size or 0), "limit": filesizeformat(limit)},
            code="too_large",
        )
    if upload.size == 0:
        raise ValidationError(_("The file is empty."), code="empty")
    name = PurePath(upload.name or "").name[:200]
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""

    upload.seek(0)
    head = upload.read(8192)
    upload.seek(0)
    detected = _detect(head)
    if detected in ALLOWED_BINARY:
        if extension not in ALLOWED_BINARY[detected]:
            raise ValidationError(
                _("The file's content does not match its name (.%(ext)s). Rename it or upload another file.")
                % {"ext": extension or "—"},
                code="mismatch",
            )
        content_type = detected
    elif detected is None and extension in TEXT_EXTENSIONS and _is_text(upload):
        content_type = TEXT_EXTENSIONS[extension]
    else:
        raise ValidationError(
            _("This type of file is not accepted. Accepted: %(types)s.")
            % {"types": ", ".join(allowed_extensions())},
            code="type",
        )

    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return CheckedFile(content_type=content_type, size=upload.size, sha256=digest.hexdigest(), name=name)
