"""Files that came with a patron's message: described (name, size, type), never kept.

Providers hand files over in different ways (Twilio: a URL and a type per MMS item; Mailgun:
multipart file parts; MIME: attachment parts). What refdesk passes on is the same
description for all of them; the content is not read beyond its length, stored or published.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

MAX_NAME = 255
"""Longest file name passed on (the event's limit)."""
MAX_LISTED = 50
"""Most files described one by one; the rest are summed up in one entry, so an event stays far
below the broker's message size limit whatever a message carries."""

_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_WORDS = {"image": "photo", "video": "video", "audio": "audio", "message": "message"}
# What phones send most, named the way people expect; anything else from Python's own table
# (not the machine's mime.types, so a name does not depend on where ingest runs).
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "video/quicktime": ".mov",
    "audio/amr": ".amr",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "text/vcard": ".vcf",
    "text/x-vcard": ".vcf",
    "application/pdf": ".pdf",
    "message/rfc822": ".eml",
}
_TABLE = mimetypes.MimeTypes()


@dataclass(frozen=True, slots=True)
class AttachedFile:
    """One file as described to staff: never its content."""

    name: str
    size: int | None  # bytes; None when the provider does not say (a Twilio MMS item)
    content_type: str | None


def media_type(raw: str | None) -> str | None:
    """The bare, lower-cased `type/subtype` of a Content-Type value; None if it names none."""
    value = (raw or "").split(";", 1)[0].strip().lower()
    return value if _MEDIA_TYPE.fullmatch(value) else None


def unnamed(number: int, content_type: str | None) -> str:
    """A name for a file its sender did not name: "photo 1.jpg" for a first JPEG, "file 2.pdf"."""
    media = media_type(content_type)
    word = _WORDS.get(media.split("/", 1)[0], "file") if media else "file"
    extension = (_EXTENSIONS.get(media) or _TABLE.guess_extension(media) or "") if media else ""
    return f"{word} {number}{extension}"


def file_name(raw: str | None, number: int, content_type: str | None) -> str:
    """A sender's file name made safe to show: folders and control characters dropped, at most
    MAX_NAME characters (the extension kept); `unnamed` when nothing is left."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    if not name:
        return unnamed(number, content_type)
    if len(name) > MAX_NAME:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            return stem[: MAX_NAME - len(extension) - 1] + "." + extension
        return name[:MAX_NAME]
    return name


def listed(files: Iterable[AttachedFile]) -> tuple[AttachedFile, ...]:
    """The files, at most MAX_LISTED of them; past that, one entry names how many more came and
    their total size."""
    everything = list(files)
    if len(everything) <= MAX_LISTED:
        return tuple(everything)
    shown, rest = everything[: MAX_LISTED - 1], everything[MAX_LISTED - 1 :]
    sizes = [f.size for f in rest]
    total = None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)
    summary = AttachedFile(f"{len(rest)} more files (not listed)", total, None)
    return (*shown, summary)
