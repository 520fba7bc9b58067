"""Abstract domains of the verifier: numeric intervals and the zone (difference-bound) domain."""

from .interval import (
    NEG_INF,
    POS_INF,
    S8_MAX,
    S8_MIN,
    S16_MAX,
    S16_MIN,
    S32_MAX,
    S32_MIN,
    S64_MAX,
    S64_MIN,
    U8_MAX,
    U16_MAX,
    U32_MAX,
    U64_MAX,
    Interval,
    bound_str,
)
from .zone import Zone, is_min_only

__all__ = [
    "NEG_INF",
    "POS_INF",
    "S8_MAX",
    "S8_MIN",
    "S16_MAX",
    "S16_MIN",
    "S32_MAX",
    "S32_MIN",
    "S64_MAX",
    "S64_MIN",
    "U8_MAX",
    "U16_MAX",
    "U32_MAX",
    "U64_MAX",
    "Interval",
    "Zone",
    "bound_str",
    "is_min_only",
]
