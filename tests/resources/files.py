"""Real files of each accepted type (and a few impostors), built in memory."""

from __future__ import annotations

import io
import os
import zipfile

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MP4 = "video/mp4"
ZIP = "application/zip"

_CONTENT_TYPES_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
)


def pdf_bytes(size: int = 2048) -> bytes:
    body = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n"
    return body + os.urandom(max(0, size - len(body) - 6)) + b"\n%%EOF"


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def docx_bytes() -> bytes:
    return _zip(
        {
            "[Content_Types].xml": _CONTENT_TYPES_XML.encode(),
            "_rels/.rels": b"<Relationships/>",
            "word/document.xml": b"<w:document/>",
        }
    )


def xlsx_bytes() -> bytes:
    return _zip(
        {
            "[Content_Types].xml": _CONTENT_TYPES_XML.encode(),
            "_rels/.rels": b"<Relationships/>",
            "xl/workbook.xml": b"<workbook/>",
        }
    )


def zip_bytes() -> bytes:
    return _zip({"readme.txt": b"templates inside", "templates/a.txt": b"a"})


def mp4_bytes(size: int = 300_000) -> bytes:
    """An ISO base media file: an `ftyp` box (brand isom) then an `mdat` box of data."""
    ftyp = (24).to_bytes(4, "big") + b"ftypisom" + (512).to_bytes(4, "big") + b"isomavc1"
    payload = os.urandom(size - len(ftyp) - 8)
    return ftyp + (len(payload) + 8).to_bytes(4, "big") + b"mdat" + payload


def windows_exe_bytes() -> bytes:
    """The start of a Windows PE program: a DOS header (`MZ`) pointing at `PE\\0\\0`."""
    header = bytearray(b"MZ" + b"\x90\x00" + bytes(56))
    header[0x3C:0x40] = (0x80).to_bytes(4, "little")
    return bytes(header) + bytes(0x80 - len(header)) + b"PE\x00\x00" + os.urandom(1024)


def elf_bytes() -> bytes:
    return b"\x7fELF\x02\x01\x01" + bytes(9) + os.urandom(1024)
