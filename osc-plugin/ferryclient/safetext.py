"""Text from the API made safe to print on a terminal.

Names and messages come from what tenants put in their containers (names, images, errors that
quote them): a terminal escape in one would reach the operator's terminal and could rewrite
what it shows (colours, cursor moves, the window title, hyperlinks, clipboard writes). Control
characters (C0 but newline and tab, DEL, C1) and bidirectional overrides are shown as visible
escapes (``\\x1b``, ``\\u202e``) instead.
"""
import re

_UNSAFE = re.compile('[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]')


def _escape(m):
    c = ord(m.group(0))
    return '\\x%02x' % c if c < 0x100 else '\\u%04x' % c


def printable(text):
    """`text` with every control character and bidi override shown as a visible escape."""
    return _UNSAFE.sub(_escape, text)


def clean(value):
    """A JSON value with all its strings (keys too) made printable."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value
