"""Source generators (`pybpf gen …`): text written from an object's specs and BTF."""

from .skeleton import generate_skeleton, render_skeleton

__all__ = ["generate_skeleton", "render_skeleton"]
