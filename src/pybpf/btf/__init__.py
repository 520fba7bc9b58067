"""btf layer of pybpf (see DESIGN.md)."""
