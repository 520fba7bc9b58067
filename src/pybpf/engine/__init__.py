"""engine layer of pybpf (see DESIGN.md)."""
