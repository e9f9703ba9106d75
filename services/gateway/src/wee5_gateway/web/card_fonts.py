"""The fonts the rank card image is drawn with: Debian's fonts-dejavu-core. The gateway checks
they are installed when it starts; Pillow and the fonts themselves load with the first card it
draws (web/rank_card.py), so a gateway that draws none does not hold them (about 6 MB)."""

from __future__ import annotations

from pathlib import Path

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")


class FontsMissing(RuntimeError):
    """The DejaVu fonts the card is drawn with are not installed."""


def font_path(name: str) -> Path:
    path = FONT_DIR / name
    if not path.is_file():
        raise FontsMissing(f"the rank card needs {path}: install Debian's fonts-dejavu-core")
    return path


def check_fonts() -> None:
    """Stops the gateway at startup when a font of the card is missing."""
    for name in FONT_FILES:
        font_path(name)
