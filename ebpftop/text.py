"""Untrusted strings (process names, file paths) made safe to show.

Whoever starts a process chooses its name and the paths it opens.  Terminal
escape sequences, bidi overrides and other control characters in them are
replaced by visible escapes, so they can neither move the cursor, restyle the
screen, write the clipboard (OSC 52), nor reorder what is shown.

Every output escapes at one place: the TUI (its notifications in
app.notify, its cells and lines in panes/), stderr (to_stderr here), syslog
(watch.syslog_message), Prometheus label values (exporter); JSON escapes
every control character itself."""

from __future__ import annotations

import sys
import unicodedata

# Bidi embedding/override/isolate controls and marks (Trojan Source).
_BIDI = {0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
# Characters that draw nothing or move the text: controls (Cc), format
# characters such as zero-width spaces and bidi controls (Cf), the line and
# paragraph separators U+2028/U+2029 (Zl, Zp), and lone surrogates (Cs), which
# is how a name's bytes that are not UTF-8 arrive (see aggregate.decode_c_string).
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def _escape(ch: str) -> str:
    o = ord(ch)
    if 0xDC80 <= o <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{o - 0xDC00:02x}"
    if o < 0x100:
        return f"\\x{o:02x}"
    return f"\\u{o:04x}"


def visible(s: str) -> str:
    """``s`` with control, format, separator and bidi characters, and bytes
    that were not UTF-8, as \\xNN / \\uNNNN; a backslash itself as \\\\,
    so that a name spelled with a real backslash never looks like an escape."""
    if s.isascii() and s.isprintable() and "\\" not in s:
        return s  # the common case, at every table cell
    out = []
    for ch in s:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or 0x7F <= o <= 0x9F or o in _BIDI or unicodedata.category(ch) in _HIDDEN_CATEGORIES:
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)


def to_stderr(message: str) -> None:
    """One line on stderr, "ebpftop: " first: every message ebpftop prints
    there may name a process, a path, or quote a recording."""
    print(f"ebpftop: {visible(message)}", file=sys.stderr, flush=True)
