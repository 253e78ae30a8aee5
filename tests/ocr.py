"""Reading text back off pictures with tesseract, as a viewer would read it."""

from __future__ import annotations

import io
import shutil
import subprocess
import unicodedata

import pytest
from PIL import Image


def need_tesseract(language: str) -> None:
    if not shutil.which("tesseract"):
        pytest.skip("tesseract is not installed (`make ocr` installs Debian's tesseract-ocr)")
    listed = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True).stdout
    if language not in listed.split():
        pytest.skip(f"tesseract has no {language} data (`make ocr` installs it)")


def read_words(picture: Image.Image, language: str) -> list[tuple[str, tuple[int, int, int, int]]]:
    """Each word tesseract reads, with its box (left, top, right, bottom) in the picture.

    Tesseract reads letters about 30 px high best, and dark on light: the picture is read at
    half size, as it is and inverted, as a block and as sparse text."""
    grey = picture.convert("L").resize((picture.width // 2, picture.height // 2),
                                       Image.Resampling.LANCZOS)
    words = []
    for version in (grey, Image.eval(grey, lambda value: 255 - value)):
        buffer = io.BytesIO()
        version.save(buffer, format="PNG")
        for layout in ("6", "11"):
            tsv = subprocess.run(["tesseract", "stdin", "stdout", "-l", language, "--psm", layout,
                                  "tsv"], input=buffer.getvalue(), capture_output=True,
                                 check=True).stdout.decode()
            for row in tsv.splitlines()[1:]:
                fields = row.split("\t")
                if len(fields) == 12 and fields[11].strip() and float(fields[10]) > 30:
                    left, top, width, height = (2 * int(value) for value in fields[6:10])
                    words.append((fields[11].strip(), (left, top, left + width, top + height)))
    return words


def plain(text: str) -> str:
    """Letters only, case and accents folded: what OCR is judged on."""
    decomposed = unicodedata.normalize("NFD", text.casefold())
    return "".join(c for c in decomposed if c.isalnum())
