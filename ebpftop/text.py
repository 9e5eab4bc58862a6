"""Untrusted strings (process names, file paths) made safe to show.

Whoever starts a process chooses its name and the paths it opens.  Terminal
escape sequences, bidi overrides and other control characters in them are
replaced by visible escapes, so they can neither move the cursor, restyle the
screen, write the clipboard (OSC 52), nor reorder what is shown."""

from __future__ import annotations

# Bidi embedding/override/isolate controls and marks (Trojan Source).
_BIDI = {0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def _escape(ch: str) -> str:
    o = ord(ch)
    if o < 0x100:
        return f"\\x{o:02x}"
    return f"\\u{o:04x}"


def visible(s: str) -> str:
    """``s`` with C0, DEL, C1 and bidi-control characters as \\xNN / \\uNNNN."""
    out = []
    for ch in s:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o <= 0x9F or o in _BIDI:
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)
