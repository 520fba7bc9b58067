"""elf layer of pybpf (see DESIGN.md)."""
