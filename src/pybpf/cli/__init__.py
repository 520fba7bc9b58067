"""The `pybpf` command line: formatting only, the logic lives in the library."""
