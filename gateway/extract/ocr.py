"""Images (PNG, JPEG, TIFF, GIF, BMP, WebP) read by Tesseract OCR.

Tesseract runs as a subprocess (the ``tesseract`` binary, English), so a slow or
crashing OCR cannot hurt the caller and is killed at the part's deadline.  When
the binary is absent images are reported ``UNSCANNABLE`` ("ocr unavailable")
rather than passed as if they held no text.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile

from PIL import Image

from gateway.extract.context import Context, Part
from gateway.extract.limits import GlobalLimitExceeded, LimitExceeded

OCR_UNAVAILABLE = "ocr unavailable"
_OCR_TIMEOUT_CAP_S = 60.0


class OcrUnavailable(Exception):
    """The OCR engine is not installed or could not run."""


def ocr_image(data: bytes, ctx: Context) -> str:
    """Text Tesseract reads in an encoded image, within the part's remaining time."""
    binary = shutil.which("tesseract")
    if binary is None:
        raise OcrUnavailable(OCR_UNAVAILABLE)
    timeout = min(ctx.remaining_time(), _OCR_TIMEOUT_CAP_S)
    if timeout <= 0:
        raise GlobalLimitExceeded("part_timeout")
    # One thread: the gateway already runs one scan per core.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    with tempfile.NamedTemporaryFile(suffix=".img") as image_file:
        image_file.write(data)
        image_file.flush()
        try:
            done = subprocess.run(
                [binary, image_file.name, "stdout", "-l", "eng"],
                capture_output=True,
                timeout=timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise GlobalLimitExceeded("part_timeout") from exc
        except OSError as exc:
            raise OcrUnavailable(OCR_UNAVAILABLE) from exc
    if done.returncode != 0:
        raise OcrUnavailable(f"ocr failed (exit {done.returncode})")
    return done.stdout.decode("utf-8", errors="replace")


def check_pixels(data: bytes, ctx: Context) -> None:
    """Refuse images too large to decode safely (only the header is read)."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    if width * height > ctx.limits.max_image_pixels:
        raise LimitExceeded("max_image_pixels")


def extract_image(part: Part, ctx: Context) -> None:
    """OCR an image attachment."""
    check_pixels(part.data, ctx)
    ctx.take_ocr()
    try:
        text = ocr_image(part.data, ctx)
    except OcrUnavailable as exc:
        ctx.finding_unscannable(part.location, str(exc))
        return
    ctx.emit(part.location, text)
