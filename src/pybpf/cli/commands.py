"""Imports every command module so that each registers on `app`."""

from . import asm  # noqa: F401
from . import disasm  # noqa: F401
from . import run_raw  # noqa: F401
from . import conformance  # noqa: F401
