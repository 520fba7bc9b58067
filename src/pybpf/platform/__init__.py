"""platform layer of pybpf (see DESIGN.md)."""
