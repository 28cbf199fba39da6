"""SMS segments: GSM-7 160/153 (extension chars cost 2), UCS-2 70/67 in UTF-16 units."""

from __future__ import annotations

import pytest

from services.notifier.segments import is_gsm7, sms_segments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("GSM-7", 0)),
        ("a", ("GSM-7", 1)),
        ("a" * 160, ("GSM-7", 1)),
        ("a" * 161, ("GSM-7", 2)),
        ("a" * 306, ("GSM-7", 2)),
        ("a" * 307, ("GSM-7", 3)),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà", ("GSM-7", 1)),
        ("{" * 80, ("GSM-7", 1)),  # 160 septets
        ("{" * 81, ("GSM-7", 2)),  # 162 septets
        ("€" * 80, ("GSM-7", 1)),
        ("a" * 159 + "[", ("GSM-7", 2)),  # 161 septets
        # 152 plain + an escape pair that does not fit the first segment's 153 septets
        ("a" * 152 + "]" + "a" * 10, ("GSM-7", 2)),
        ("a" * 152 + "]" + "a" * 152, ("GSM-7", 3)),
        ("é" * 160, ("GSM-7", 1)),  # é is in the basic table
        ("ú", ("UCS-2", 1)),  # ú is not
        ("“quoted”", ("UCS-2", 1)),  # curly quotes force UCS-2
        ("a" * 69 + "—", ("UCS-2", 1)),
        ("a" * 70 + "—", ("UCS-2", 2)),
        ("a" * 133 + "—", ("UCS-2", 2)),  # 134 = 2 x 67
        ("a" * 134 + "—", ("UCS-2", 3)),
        ("😀" * 35, ("UCS-2", 1)),  # 70 UTF-16 code units
        ("😀" * 36, ("UCS-2", 2)),
        ("a" * 66 + "😀" + "a" * 5, ("UCS-2", 2)),  # the surrogate pair is not split
        ("a" * 66 + "😀" + "a" * 66, ("UCS-2", 3)),
    ],
)
def test_sms_segments(text: str, expected: tuple[str, int]) -> None:
    assert sms_segments(text) == expected


def test_is_gsm7() -> None:
    assert is_gsm7("Reply STOP to opt out. Msg&data rates may apply: https://x.y/z?a=1#b")
    assert not is_gsm7("Café ú")
