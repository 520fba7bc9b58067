"""verifier layer of pybpf (see DESIGN.md)."""
