"""runtime layer of pybpf (see DESIGN.md)."""
