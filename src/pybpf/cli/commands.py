"""Imports every command module so that each registers on `app`."""

from . import asm  # noqa: F401
