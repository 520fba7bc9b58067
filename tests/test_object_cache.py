"""The JIT's disk cache of native objects: bounded, least recently used removed first."""

from __future__ import annotations

import os

from pybpf.runtime.native.object_cache import ObjectCache, cache_limit_bytes


def _fill(cache: ObjectCache, names: list[str], size: int) -> None:
    for age, name in enumerate(names):
        cache.store(name, b"x" * size)
        # Older names get older times (a store is a use).
        os.utime(cache._path(name), (1_000_000 + age, 1_000_000 + age))


def test_trim_removes_least_recently_used_down_to_three_quarters(tmp_path):
    cache = ObjectCache(tmp_path)
    cache._trimmed = True  # trim by hand below
    _fill(cache, [f"m{i}" for i in range(10)], 1000)
    os.utime(cache._path("m0"), (2_000_000, 2_000_000))  # m0 used last
    assert cache.trim(10_000) == 0  # at the limit: nothing goes
    assert cache.trim(8_000) == 4  # 10,000 bytes down to at most 6,000
    left = sorted(p.stem for p in tmp_path.glob("*.o"))
    assert left == ["m0", "m5", "m6", "m7", "m8", "m9"]


def test_load_refreshes_an_object(tmp_path):
    cache = ObjectCache(tmp_path)
    cache._trimmed = True
    _fill(cache, ["a", "b", "c", "d"], 1000)
    assert cache.load("a") == b"x" * 1000
    cache.trim(3000)
    assert cache.contains("a") and not cache.contains("b") and not cache.contains("c")


def test_first_store_of_a_process_trims_but_keeps_what_it_stored(tmp_path, monkeypatch):
    monkeypatch.setenv("PYBPF_CACHE_MAX_MB", str(4000 / (1024 * 1024)))
    old = ObjectCache(tmp_path)
    old._trimmed = True
    _fill(old, [f"old{i}" for i in range(6)], 1000)
    fresh = ObjectCache(tmp_path)  # a new process
    fresh.store("new", b"y" * 1000)
    assert fresh.contains("new")
    assert sum(p.stat().st_size for p in tmp_path.glob("*.o")) <= 3000
    fresh.store("newer", b"z" * 5000)  # later stores of the process do not scan again
    assert fresh.contains("newer") and fresh.contains("new")


def test_limit_from_the_environment(monkeypatch):
    monkeypatch.setenv("PYBPF_CACHE_MAX_MB", "2")
    assert cache_limit_bytes() == 2 * 1024 * 1024
    monkeypatch.setenv("PYBPF_CACHE_MAX_MB", "lots")
    assert cache_limit_bytes() == 256 * 1024 * 1024


def test_the_verifiers_cache_is_bounded_too(tmp_path, monkeypatch):
    from pybpf.verifier.cache import VerifierCache
    from pybpf.verifier.report import Report

    writer = VerifierCache(tmp_path)
    for i in range(8):
        writer.put(f"{i:02x}" + "0" * 62, Report())
    files = sorted(tmp_path.rglob("*.json"), key=lambda p: p.name)
    assert len(files) == 8
    size = files[0].stat().st_size
    for age, path in enumerate(files):
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    monkeypatch.setenv("PYBPF_CACHE_MAX_MB", str(4 * size / (1024 * 1024)))
    reader = VerifierCache(tmp_path)  # a new process
    assert reader.get("00" + "0" * 62) is not None  # a read refreshes the oldest report
    reader.put("ff" + "0" * 62, Report())  # the first store trims
    left = {p.name[:2] for p in tmp_path.rglob("*.json")}
    assert "ff" in left and "00" in left
    assert len(left) <= 3  # at most 3/4 of 4 reports' bytes


def test_the_sources_digest_sees_every_source_and_each_change(tmp_path):
    """The digest keying pybpf's native modules lists what `Path.rglob` finds, in the same
    order, and changes with a source's size or modification time (not with other files)."""
    import hashlib
    import sys

    from pybpf.runtime.native import compiler

    for name in ("a.py", "a/b.py", "a/c/d.py", "a-b.py", "a/notes.txt", "z.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"# {name}\n")
    found = sorted(compiler._python_sources(str(tmp_path), ""), key=compiler._by_parts)
    expected = [str(p.relative_to(tmp_path)) for p in sorted(tmp_path.rglob("*.py"))]
    assert [relative for relative, _stat in found] == expected
    reference = hashlib.sha256(sys.version.encode())
    for relative in expected:
        stat = (tmp_path / relative).stat()
        reference.update(f"{relative}:{stat.st_size}:{stat.st_mtime_ns}|".encode())
    before = compiler.sources_digest(str(tmp_path))
    assert before == reference.hexdigest()
    (tmp_path / "a" / "notes.txt").write_text("not a source\n")
    assert compiler.sources_digest(str(tmp_path)) == before
    source = tmp_path / "a" / "c" / "d.py"
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    touched = compiler.sources_digest(str(tmp_path))
    assert touched != before
    source.write_text("# d.py, longer\n")
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert compiler.sources_digest(str(tmp_path)) not in (before, touched)
