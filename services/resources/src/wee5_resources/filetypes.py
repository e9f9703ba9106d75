"""What a stored file really is, from its first bytes (and, for ZIPs, the names inside),
whatever it is called and whatever the uploader declared.

DOCX and XLSX are ZIP archives (Office Open XML): a DOCX holds `word/…`, an XLSX `xl/…`.
Executables (Windows PE starting `MZ`, Linux ELF, macOS Mach-O) are named as such so that a
renamed one is refused with a clear reason.
"""

from __future__ import annotations

from enum import StrEnum


class FileKind(StrEnum):
    PDF = "application/pdf"
    DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    MP4 = "video/mp4"
    ZIP = "application/zip"
    EXECUTABLE = "executable"
    UNKNOWN = "unknown"


# The content types an upload may declare.
ACCEPTED_CONTENT_TYPES = frozenset(
    kind.value for kind in (FileKind.PDF, FileKind.DOCX, FileKind.XLSX, FileKind.MP4, FileKind.ZIP)
)

_EXECUTABLE_MAGIC = (
    b"MZ",  # Windows PE / DOS
    b"\x7fELF",  # Linux, BSD
    b"\xcf\xfa\xed\xfe",  # Mach-O 64-bit
    b"\xce\xfa\xed\xfe",  # Mach-O 32-bit
    b"\xca\xfe\xba\xbe",  # Mach-O universal
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # first entry; empty archive
# ISO base media brands of MP4 video (ftyp major brand).
_MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash",
     b"mmp4", b"MSNV", b"f4v "}
)  # fmt: skip


def kind_of_head(head: bytes) -> FileKind:
    """The kind the first bytes show; ZIP for any ZIP archive (look inside with
    `kind_of_zip` to tell DOCX and XLSX apart)."""
    if head.startswith(_EXECUTABLE_MAGIC):
        return FileKind.EXECUTABLE
    if head.startswith(b"%PDF-"):
        return FileKind.PDF
    if head.startswith(_ZIP_MAGIC):
        return FileKind.ZIP
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _MP4_BRANDS:
        return FileKind.MP4
    return FileKind.UNKNOWN


def kind_of_zip(entries: list[str] | None) -> FileKind:
    """DOCX, XLSX or a plain ZIP from the archive's entry names; None (unreadable) is
    UNKNOWN."""
    if entries is None:
        return FileKind.UNKNOWN
    office = "[Content_Types].xml" in entries
    if office and any(name.startswith("word/") for name in entries):
        return FileKind.DOCX
    if office and any(name.startswith("xl/") for name in entries):
        return FileKind.XLSX
    return FileKind.ZIP
