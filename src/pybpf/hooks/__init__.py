"""hooks layer of pybpf (see DESIGN.md)."""
