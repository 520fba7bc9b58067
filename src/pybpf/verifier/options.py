"""What the analysis needs to know besides the code: options and the program's platform view."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CtxDescriptor:
    """The context layout: size, and the offsets of the data/data_end/meta fields (-1: none).

    `regions` lists context fields that hold a pointer to memory of a fixed
    size, as `(offset, width, size)`: a load of exactly that field gives a
    non-null pointer to `size` writable bytes (the flow dissector's
    `flow_keys`, which Linux types PTR_TO_FLOW_KEYS).
    """

    size: int = 64
    data: int = 0
    end: int = 4
    meta: int = -1
    regions: tuple[tuple[int, int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class MapDescriptor:
    """What the verifier knows of a map: key and value sizes, entries and type."""

    key_size: int = 4
    value_size: int = 4
    max_entries: int = 4
    type: int = 0
    inner: int | None = None  # for maps of maps: the fd (table index) of the inner map template
    # Programs may not write the map (BPF_F_RDONLY_PROG: `.rodata`, `.kconfig`), and when
    # it is also frozen, `frozen` holds its value (key 0) as it is when the program loads:
    # the kernel reads such a map's bytes as constants.
    readonly: bool = False
    frozen: bytes | None = None


@dataclass(slots=True)
class AnalysisOptions:
    """Options of one analysis (defaults as PREVAIL's YAML tests use them)."""

    allow_division_by_zero: bool = True
    check_termination: bool = False
    big_endian: bool = False
    simplify: bool = False
    ctx: CtxDescriptor = field(default_factory=CtxDescriptor)
    maps: dict[int, MapDescriptor] = field(default_factory=dict)
    max_packet_size: int = 0xFFFF
    program_type: str | None = None
    map_count: int | None = None  # size of the map table `map_by_idx` indexes (None: unchecked)
    # Check each context load/store against the Linux field table of `program_type`
    # (pybpf.platform.contexts: readable/writable fields, widths, alignment, pointer
    # fields), as the kernel and pybpf's runtime do; PREVAIL checks only the context
    # size, so its comparison runners turn this off. Inert for program types without
    # a table (and when `program_type` is None, as in the YAML tests).
    linux_ctx_fields: bool = True
    # The Linux program type whose context table applies (None: `program_type`); for a
    # section PREVAIL maps differently from libbpf (`tc`: PREVAIL socket_filter, libbpf
    # and the loader sched_cls), the loader's.
    linux_program_type: str | None = None
    # The loader's expected attach type (an `AttachType` name, e.g. CGROUP_INET4_CONNECT),
    # where the section gives one for `linux_program_type`: some context rules depend on
    # it (struct bpf_sock_addr's address fields per hook).
    linux_attach_type: str | None = None
    # The kernel's rules PREVAIL does not have (verifier/linux_rules.py): the exit value
    # range of the program type (`exit_range`), ringbuf references released on every
    # path, helpers given maps of the types they accept, context pointers used by one
    # instruction only as context pointers, at offset 0, never by atomics.
    linux_rules: bool = False
    # The values r0 may hold at the entry function's exit ((lo, hi) signed; None: any).
    exit_range: tuple[int, int] | None = None
    # Keep every node's pre-invariant in the `Report` (`Report.invariants`), for
    # `pybpf verify -v` and the failing state in rejections; off on the load path.
    collect_invariants: bool = False
    # A privileged program type (PREVAIL's `is_privileged`: kprobe, raw_tracepoint,
    # raw_tracepoint_writable, which the kernel loads only with CAP_PERFMON, where
    # pointer leaks are allowed): a helper argument of kind ANYTHING may be a pointer.
    privileged: bool = False
    # The kernel's allow_uninit_stack (a root loader): stack bytes never written (or
    # holding part of a spilled pointer, allow_ptr_leaks) may be read, by loads and by
    # helpers (a map key); a load gives an unknown number. The runtime stack is real
    # memory, so the bytes are whatever they are, never a pointer to trust.
    allow_uninit_stack: bool = False
    # The kernel's allow_ptr_leaks (a root loader): every program type is `privileged`
    # (pointers stored into maps and packets, passed as ANYTHING), and a program type
    # whose return value has no range may return a pointer. Off, the verdict is the
    # unprivileged one, whose accepted programs never expose an address: the JIT and
    # interpreter differential tests need that, since the two engines' addresses differ.
    allow_ptr_leaks: bool = False
    # The most iterations a loop's termination counter may show (BoundedLoopCount):
    # PREVAIL's 100000. The kernel has no such bound, only its 1 million processed
    # instructions (kernel_limits.py), which no loop of more iterations can stay under,
    # so the load path uses that.
    loop_count_limit: int = 100_000
    # Analyse a loop as the kernel does, iteration by iteration without joining
    # iterations, while its iterations run out within a budget (fixpoint.py); other
    # loops get the widening fixpoint. On the load path only: PREVAIL's YAML cases and
    # sample verdicts measure the widening analysis.
    unroll_loops: bool = False

    @classmethod
    def for_load(cls) -> AnalysisOptions:
        """The options of the load path (`pybpf.load`, `pybpf verify`): PREVAIL's defaults,
        plus termination checking, the Linux context field checks, the kernel's rules and
        loops unrolled as the kernel walks them."""
        return cls(
            check_termination=True,
            linux_ctx_fields=True,
            linux_rules=True,
            unroll_loops=True,
            allow_uninit_stack=True,
            allow_ptr_leaks=True,
            loop_count_limit=1_000_000,
        )

    def map(self, fd: int) -> MapDescriptor:
        """The descriptor of map `fd` (the YAML tests' single fake map by default)."""
        return self.maps.get(fd, MapDescriptor())

    def maps_in(self, lo: int | None, hi: int | None) -> list[MapDescriptor]:
        """The descriptors of every map whose fd lies in [lo, hi] (map 0 when unbounded).

        A map fd reloaded from a stack slot written on several paths may be
        one of several maps; checks then have to hold for each.
        """
        if lo is None or hi is None or hi - lo > 4096:
            return [self.map(0)] if not self.maps else list(self.maps.values())
        found = [self.maps[fd] for fd in range(max(lo, 0), hi + 1) if fd in self.maps]
        return found or [self.map(lo)]
