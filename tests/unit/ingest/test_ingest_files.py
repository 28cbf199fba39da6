"""How files that came with a message are described: names made safe, unnamed files named by
their kind, and a bounded list."""

from __future__ import annotations

import pytest

from services.ingest.providers.files import (
    MAX_LISTED,
    MAX_NAME,
    AttachedFile,
    file_name,
    listed,
    media_type,
    unnamed,
)


@pytest.mark.parametrize(
    ("number", "content_type", "name"),
    [
        (1, "image/jpeg", "photo 1.jpg"),
        (2, "IMAGE/PNG; name=x", "photo 2.png"),
        (1, "video/3gpp", "video 1.3gp"),
        (3, "audio/amr", "audio 3.amr"),
        (1, "text/vcard", "file 1.vcf"),
        (1, "application/pdf", "file 1.pdf"),
        (4, "application/x-unheard-of", "file 4"),
        (1, "", "file 1"),
        (1, None, "file 1"),
    ],
)
def test_a_file_without_a_name_is_named_by_its_kind(
    number: int, content_type: str | None, name: str
) -> None:
    assert unnamed(number, content_type) == name


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("IMG_2041.jpg", "IMG_2041.jpg"),
        ("C:\\Users\\pat\\notice.pdf", "notice.pdf"),
        ("../../etc/passwd", "passwd"),
        ("bad\r\nname\x00.txt", "badname.txt"),
        ("   ", "photo 1.png"),
        (None, "photo 1.png"),
    ],
)
def test_a_senders_file_name_is_made_safe_to_show(raw: str | None, name: str) -> None:
    assert file_name(raw, 1, "image/png") == name


def test_a_long_file_name_keeps_its_extension() -> None:
    name = file_name("x" * 400 + ".pdf", 1, None)
    assert len(name) == MAX_NAME and name.endswith(".pdf")


def test_media_type_is_bare_and_lower_case() -> None:
    assert media_type('Image/JPEG; name="a.jpg"') == "image/jpeg"
    assert media_type("not a type") is None


def test_past_the_limit_the_rest_are_summed_up_in_one_entry() -> None:
    files = [AttachedFile(f"f{i}.txt", 10, "text/plain") for i in range(MAX_LISTED + 25)]
    shown = listed(files)
    assert len(shown) == MAX_LISTED
    assert shown[-1] == AttachedFile("26 more files (not listed)", 260, None)
    assert listed(files[:MAX_LISTED]) == tuple(files[:MAX_LISTED])
