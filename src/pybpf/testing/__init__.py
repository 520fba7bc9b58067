"""Test support shared by pybpf's tests and benchmarks.

`kernel` drives the real Linux kernel through libbpf (ctypes) as the
reference pybpf is compared with; `packets` builds the frames both are fed.
Neither is needed to use pybpf.
"""
