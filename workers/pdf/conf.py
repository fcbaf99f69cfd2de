"""The pdf app's settings, read in one place with their defaults (project/settings.py fills them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Days a built PDF is kept before the nightly clean-up deletes it.
DEFAULT_RETENTION_DAYS = 7
# "" = Django streams the file; "x-accel-redirect" = nginx sends it; "x-sendfile" = Apache/lighttpd.
DEFAULT_SENDFILE = ""
SENDFILE_MODES = ("", "x-accel-redirect", "x-sendfile")
# nginx `internal` location that maps to MEDIA_ROOT/pdf/.
DEFAULT_ACCEL_PREFIX = "/protected/pdf/"
# Sub-directory of MEDIA_ROOT holding the built files.
PDF_DIR = "pdf"


@dataclass(frozen=True)
class PdfSettings:
    """Typed view of the GREENROOM_PDF_* settings."""

    retention_days: int
    sendfile: str
    accel_prefix: str
    directory: Path


def get() -> PdfSettings:
    """Read the settings now (tests override them, so never cache); refuse an unknown sendfile mode."""
    sendfile = str(getattr(settings, "GREENROOM_PDF_SENDFILE", DEFAULT_SENDFILE)).strip().lower()
    if sendfile not in SENDFILE_MODES:
        raise ImproperlyConfigured(
            f"GREENROOM_PDF_SENDFILE={sendfile!r} must be one of: {', '.join(repr(m) for m in SENDFILE_MODES)}"
        )
    prefix = str(getattr(settings, "GREENROOM_PDF_ACCEL_PREFIX", DEFAULT_ACCEL_PREFIX))
    return PdfSettings(
        retention_days=int(getattr(settings, "GREENROOM_PDF_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)),
        sendfile=sendfile,
        accel_prefix=prefix if prefix.endswith("/") else prefix + "/",
        directory=Path(settings.MEDIA_ROOT) / PDF_DIR,
    )
