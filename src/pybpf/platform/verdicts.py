"""What packet programs return: XDP actions and tc verdicts, by name.

One home for the names the replay hooks file frames under and the pytest
plugin reports (`XDP_` / `TC_ACT_` + the name in upper case is the
kernel's constant).
"""

from __future__ import annotations

__all__ = ["TC_VERDICTS", "XDP_ACTIONS"]

XDP_ACTIONS = ("aborted", "drop", "pass", "tx", "redirect")
"""XDP actions by value: XDP_ABORTED (0) .. XDP_REDIRECT (4)."""

TC_VERDICTS = (
    "unspec",
    "ok",
    "reclassify",
    "shot",
    "pipe",
    "stolen",
    "queued",
    "repeat",
    "redirect",
    "trap",
)
"""tc verdicts by value + 1: TC_ACT_UNSPEC (-1) .. TC_ACT_TRAP (8)."""
