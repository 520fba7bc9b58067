"""CO-RE: apply a program's BTF relocations against a target BTF, as libbpf does.

For each `CoreRelocation` (a `.BTF.ext` record: instruction, local root
type, access string, kind) the local spec is parsed (`core_spec`), the
target's candidates are found by essential name and kind (`core_match`),
each candidate's spec is matched, and the relocation's value is computed
from the local spec (the value the compiler put in the instruction, which
is checked) and from the matching target spec (the new value). The
instruction is then patched: the immediate of an ALU instruction or of an
`lddw`, the offset of a load or store (and its width, when a field's size
changed in a way libbpf allows).

A relocation no candidate satisfies behaves as in libbpf: existence kinds
give 0, `bpf_core_type_size` and friends 0, and every other kind *poisons*
the instruction (`call 0xbad2310`), which the verifier rejects only if it
is reachable, naming the relocation (`poison_message`). Malformed
relocations and instructions that do not hold the expected value raise
`CoreError`, as libbpf fails the load.

`relocate_program(program_spec, local_btf, target_btf)` returns the
patched `ProgramSpec` and one `CoreResult` per relocation;
`relocate_object` does it for every program of an `ObjectSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..errors import LoadError
from ..isa.instruction import Instruction, with_pcs
from ..isa.opcodes import CALL, LDDW, SIZE_BYTES, InsnClass, Size, Source
from .core_match import find_candidates, skip_mods
from .core_spec import (
    ENUMVAL_KINDS,
    FIELD_KINDS,
    TYPE_KINDS,
    AccessSpec,
    access_path,
    format_spec,
    kind_name,
    match_spec,
    parse_spec,
    resolve_size,
)
from .ext import CoreRelocation, CoreReloKind
from .spec import Spec
from .target import CoreOutcome
from .types import Array, Enum, Enum64, Int, Ptr

__all__ = [
    "POISON_IMM",
    "CoreError",
    "CoreOutcome",
    "CoreResult",
    "is_poisoned",
    "poison_message",
    "relocate_object",
    "relocate_program",
]

#: The helper id libbpf writes into a poisoned instruction (0xbad2310, "bad relo").
POISON_IMM = 195896080
U64 = (1 << 64) - 1
SHRT_MAX = 0x7FFF


class CoreError(LoadError):
    """A CO-RE relocation that makes the load fail (libbpf: "failed to relocate")."""


class _Poison(Exception):
    """Internal: the relocation asks for its instruction to be poisoned (libbpf's -EUCLEAN)."""


@dataclass(frozen=True, slots=True)
class CoreResult:
    """What one CO-RE relocation of a program resolved to.

    `index` numbers the relocation within its program; `local` and
    `target` are the specs as libbpf prints them (`target` None when no
    candidate matched); `original` is the value the compiler emitted,
    `value` the one patched in; `poisoned` marks an instruction replaced
    by `call 0xbad2310`; `candidates` counts the target types that
    matched.
    """

    index: int
    relocation: CoreRelocation
    local: str
    target: str | None
    original: int
    value: int
    poisoned: bool
    target_type_id: int | None
    candidates: int
    subject: str

    @property
    def pc(self) -> int:
        """The relocated instruction."""
        return self.relocation.pc

    @property
    def kind(self) -> str:
        """libbpf's name of the relocation kind (`byte_off`, `field_exists`, …)."""
        return kind_name(self.relocation.kind)

    def describe(self) -> str:
        """One line: `byte_off struct iphdr.protocol -> 9` (or `-> poisoned (…)`)."""
        if self.poisoned:
            why = (
                "no match in the target BTF"
                if self.target is None
                else "the field changed size and is not an unsigned integer or a pointer"
            )
            return f"{self.kind} {self.subject} -> poisoned ({why})"
        return f"{self.kind} {self.subject} -> {_signed_if_negative(self.value)}"

    def to_json(self) -> dict[str, Any]:
        """The result as plain data (for `pybpf disasm --json`)."""
        return {
            "index": self.index,
            "pc": self.pc,
            "kind": self.kind,
            "subject": self.subject,
            "local": self.local,
            "target": self.target,
            "target_type_id": self.target_type_id,
            "candidates": self.candidates,
            "original": self.original,
            "value": self.value,
            "poisoned": self.poisoned,
        }


def _signed_if_negative(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


@dataclass
class _Resolution:
    """libbpf's `struct bpf_core_relo_res`."""

    orig_val: int = 0
    new_val: int = 0
    poison: bool = False
    validate: bool = True
    fail_memsz_adjust: bool = False
    orig_sz: int = 0
    new_sz: int = 0
    orig_type_id: int = 0
    new_type_id: int = 0


# -- values of each relocation kind ------------------------------------------------------


@dataclass
class _FieldValue:
    value: int
    size: int = 0  # the field's memory size (for load/store width changes)
    type_id: int = 0
    validate: bool = True


def _field_value(kind: int, spec: AccessSpec | None, what: str) -> _FieldValue:
    """`bpf_core_calc_field_relo`."""
    if kind == CoreReloKind.FIELD_EXISTS:
        return _FieldValue(1 if spec is not None else 0)
    if spec is None:
        raise _Poison
    btf = spec.btf
    last = spec.accessors[-1]
    if last.name is None:  # an array element (or the root itself)
        if kind == CoreReloKind.FIELD_BYTE_OFFSET:
            return _FieldValue(spec.bit_offset // 8, _element_size(btf, last.type_id), last.type_id)
        if kind == CoreReloKind.FIELD_BYTE_SIZE:
            return _FieldValue(resolve_size(btf, last.type_id))
        raise CoreError(f"{what}: {kind_name(kind)} can't be applied to array access")
    member = btf.type_by_id(last.type_id).members[last.index]  # type: ignore[union-attr]
    field_type_id, field_type = skip_mods(btf, member.type)
    bit_off = spec.bit_offset
    bit_sz = member.bitfield_size
    bitfield = bit_sz > 0
    if bitfield:
        byte_sz = field_type.size  # type: ignore[union-attr]
        byte_off = bit_off // 8 // byte_sz * byte_sz
        # The smallest load that holds the whole bitfield.
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:
            if byte_sz >= 8:
                raise CoreError(f"{what}: can't be satisfied for bitfield")
            byte_sz *= 2
            byte_off = bit_off // 8 // byte_sz * byte_sz
    else:
        byte_sz = resolve_size(btf, field_type_id)
        byte_off = bit_off // 8
        bit_sz = byte_sz * 8
    # The compiler's bitfield offsets and sizes may legitimately differ from
    # libbpf's choice, so only signedness and the right shift are checked.
    validate = not bitfield
    if kind == CoreReloKind.FIELD_BYTE_OFFSET:
        if bitfield:
            return _FieldValue(byte_off, validate=validate)
        return _FieldValue(byte_off, _element_size(btf, field_type_id), field_type_id, validate)
    if kind == CoreReloKind.FIELD_BYTE_SIZE:
        return _FieldValue(byte_sz, validate=validate)
    if kind == CoreReloKind.FIELD_SIGNED:
        # An int with the signed encoding, or an enum whose kind flag says signed.
        signed = isinstance(field_type, (Int, Enum, Enum64)) and field_type.signed
        return _FieldValue(int(signed))
    if kind == CoreReloKind.FIELD_LSHIFT_U64:
        # Little-endian: shift the field's top bit to bit 63.
        return _FieldValue(64 - (bit_off + bit_sz - byte_off * 8), validate=validate)
    if kind == CoreReloKind.FIELD_RSHIFT_U64:
        return _FieldValue(64 - bit_sz)
    raise CoreError(f"{what}: unrecognized CO-RE relocation {kind_name(kind)} ({kind})")


def _element_size(btf: Spec, type_id: int) -> int:
    # For arrays, loads and stores touch one element, not the whole array.
    type_id, record = skip_mods(btf, type_id)
    while isinstance(record, Array):
        type_id, record = skip_mods(btf, record.type)
    return resolve_size(btf, type_id)


def _type_value(kind: int, spec: AccessSpec | None) -> tuple[int, bool]:
    """`bpf_core_calc_type_relo`: the value and whether the instruction is checked against it."""
    if spec is None:
        return 0, True
    if kind == CoreReloKind.TYPE_ID_TARGET:
        # Type ids change when objects are linked: never checked.
        return spec.root_type_id, False
    if kind in (CoreReloKind.TYPE_EXISTS, CoreReloKind.TYPE_MATCHES):
        return 1, True
    if kind == CoreReloKind.TYPE_SIZE:
        return resolve_size(spec.btf, spec.root_type_id), True
    raise CoreError(f"unrecognized CO-RE relocation {kind_name(kind)} ({kind})")


def _enumval_value(kind: int, spec: AccessSpec | None) -> int:
    """`bpf_core_calc_enumval_relo`."""
    if kind == CoreReloKind.ENUMVAL_EXISTS:
        return 1 if spec is not None else 0
    if spec is None:
        raise _Poison
    acc = spec.accessors[0]
    record = spec.btf.type_by_id(acc.type_id)
    # A 32-bit enum's value is sign-extended (libbpf reads it as s32).
    return record.values[acc.index].value & U64  # type: ignore[union-attr]


def _calculate(kind: int, local: AccessSpec, target: AccessSpec | None, what: str) -> _Resolution:
    """`bpf_core_calc_relo`: the original and new values of one relocation."""
    res = _Resolution()
    try:
        if kind in FIELD_KINDS:
            orig = _field_value(kind, local, what)
            new = _field_value(kind, target, what)
            res.orig_val, res.orig_sz, res.orig_type_id = orig.value, orig.size, orig.type_id
            res.new_val, res.new_sz, res.new_type_id = new.value, new.size, new.type_id
            res.validate = orig.validate
            if res.orig_sz != res.new_sz:
                assert target is not None
                res.fail_memsz_adjust = not _size_change_ok(
                    local.btf, res.orig_type_id, target.btf, res.new_type_id
                )
        elif kind in TYPE_KINDS:
            res.orig_val, res.validate = _type_value(kind, local)
            res.new_val, _ = _type_value(kind, target)
        elif kind in ENUMVAL_KINDS:
            res.orig_val = _enumval_value(kind, local)
            res.new_val = _enumval_value(kind, target)
        else:
            raise CoreError(f"{what}: unrecognized CO-RE relocation {kind}")
    except _Poison:
        res.poison = True
    res.orig_val &= U64
    res.new_val &= U64
    return res


def _size_change_ok(local: Spec, local_id: int, target: Spec, target_id: int) -> bool:
    # A load may shrink or grow only for pointers (a 32-bit kernel's pointers)
    # and unsigned integers, whose zero extension keeps the value.
    orig, new = local.type_by_id(local_id), target.type_by_id(target_id)
    if isinstance(orig, Ptr) and isinstance(new, Ptr):
        return True
    return isinstance(orig, Int) and isinstance(new, Int) and orig.encoding != 1 != new.encoding


# -- resolving one relocation against the candidates -------------------------------------


@dataclass
class _Resolved:
    res: _Resolution
    local: AccessSpec
    target: AccessSpec | None
    candidates: int


def _resolve(
    relo: CoreRelocation,
    local_btf: Spec,
    target_btf: Spec,
    cache: dict[int, list[int]],
    what: str,
) -> _Resolved:
    """`bpf_core_calc_relo_insn`: find the target spec and the values."""
    kind = relo.kind
    try:
        local_type = local_btf.type_by_id(relo.type_id)
        local = parse_spec(local_btf, relo.type_id, relo.access, kind)
    except LoadError as error:
        raise CoreError(f"{what}: {error}") from None
    if kind == CoreReloKind.TYPE_ID_LOCAL:
        res = _Resolution(relo.type_id, relo.type_id, validate=False)
        return _Resolved(res, local, None, 0)
    if not local_type.name:
        raise CoreError(
            f"{what}: <{kind_name(kind)}> ({relo.type_id}) relocation doesn't support "
            "anonymous types"
        )
    candidates = cache.get(relo.type_id)
    if candidates is None:
        candidates = find_candidates(local_btf, relo.type_id, target_btf)
    matched: list[int] = []
    best: _Resolution | None = None
    best_spec: AccessSpec | None = None
    for candidate in candidates:
        try:
            cand_spec = match_spec(local, target_btf, candidate)
        except LoadError as error:
            raise CoreError(f"{what}: error matching candidate [{candidate}]: {error}") from None
        if cand_spec is None:
            continue
        cand_res = _calculate(kind, local, cand_spec, what)
        if best is None:
            best, best_spec = cand_res, cand_spec
        elif best_spec is not None and cand_spec.bit_offset != best_spec.bit_offset:
            raise CoreError(
                f"{what}: field offset ambiguity: {best_spec.bit_offset // 8} != "
                f"{cand_spec.bit_offset // 8}"
            )
        elif cand_res.poison != best.poison or cand_res.new_val != best.new_val:
            raise CoreError(
                f"{what}: relocation decision ambiguity: "
                f"{'poison' if best.poison else 'success'} {best.new_val} != "
                f"{'poison' if cand_res.poison else 'success'} {cand_res.new_val}"
            )
        matched.append(candidate)
    # As libbpf, candidates a relocation rejected are dropped for the later
    # relocations of the same local type (unless none matched at all).
    cache[relo.type_id] = matched if matched else candidates
    if best is None:
        return _Resolved(_calculate(kind, local, None, what), local, None, 0)
    return _Resolved(best, local, best_spec, len(matched))


# -- patching instructions ------------------------------------------------------------------


def _poisoned(insn: Instruction) -> list[Instruction]:
    call = Instruction(CALL, 0, 0, 0, POISON_IMM)
    # Both halves of an lddw, so that the verifier does not trip on a bare second slot.
    return [call, call] if insn.opcode == LDDW else [call]


def _sign_extend(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _patch(insn: Instruction, res: _Resolution, what: str) -> list[Instruction]:
    """`bpf_core_patch_insn`: the instruction(s) replacing `insn`."""
    if res.poison:
        return _poisoned(insn)
    orig, new = res.orig_val, res.new_val
    cls = insn.opcode & 0x07
    if cls in (InsnClass.ALU, InsnClass.ALU64):
        if insn.opcode & Source.X:
            raise CoreError(f"{what}: ALU instruction with a register operand cannot be relocated")
        if res.validate and insn.imm & U64 != orig:
            raise CoreError(
                f"{what}: unexpected insn (ALU/ALU64) value: got {insn.imm}, exp {orig} -> {new}"
            )
        return [replace(insn, imm=_sign_extend(new, 32))]
    if cls in (InsnClass.LDX, InsnClass.ST, InsnClass.STX):
        if res.validate and insn.off & U64 != orig:
            raise CoreError(
                f"{what}: unexpected insn (LDX/ST/STX) value: got {insn.off}, exp {orig} -> {new}"
            )
        if new > SHRT_MAX:
            raise CoreError(f"{what}: insn (LDX/ST/STX) value too big: {new}")
        if res.fail_memsz_adjust:
            # libbpf warns ("accesses field incorrectly") and poisons.
            return _poisoned(insn)
        opcode = insn.opcode
        if res.new_sz != res.orig_sz:
            width = SIZE_BYTES[Size(opcode & 0x18)]
            if width != res.orig_sz:
                raise CoreError(
                    f"{what}: insn (LDX/ST/STX) unexpected mem size: got {width}, exp {res.orig_sz}"
                )
            sizes = {nbytes: size for size, nbytes in SIZE_BYTES.items()}
            if res.new_sz not in sizes:
                raise CoreError(f"{what}: insn (LDX/ST/STX) invalid new mem size: {res.new_sz}")
            opcode = (opcode & ~0x18) | sizes[res.new_sz]
        return [replace(insn, opcode=opcode, off=new)]
    if insn.opcode == LDDW:
        if insn.src != 0 or insn.off != 0:
            raise CoreError(f"{what}: insn (LDIMM64) has unexpected form")
        if res.validate and insn.imm & U64 != orig:
            raise CoreError(
                f"{what}: unexpected insn (LDIMM64) value: got {insn.imm}, exp {orig} -> {new}"
            )
        return [replace(insn, imm=new)]
    raise CoreError(f"{what}: trying to relocate unrecognized insn, code:{insn.opcode:#x}")


# -- programs and objects ---------------------------------------------------------------------


def _subject(local: AccessSpec) -> str:
    """`struct iphdr.protocol`, `enum e::B`, `struct foo`: what a relocation is about."""
    btf = local.btf
    record = btf.type_by_id(local.root_type_id)
    keyword = record.kind.name.lower()
    name = f"{keyword} {record.name or '<anon>'}"
    if local.kind in FIELD_KINDS:
        return name + access_path(local)
    if local.kind in ENUMVAL_KINDS:
        return f"{name}::{local.accessors[0].name}"
    return name


def relocate_program(
    program: Any,
    local_btf: Spec,
    target_btf: Spec,
    cache: dict[int, list[int]] | None = None,
) -> tuple[Any, tuple[CoreResult, ...]]:
    """`program` (a `ProgramSpec`) with its CO-RE relocations applied against `target_btf`.

    Returns the new spec (same pcs: an `lddw` that is poisoned becomes two
    one-slot calls) and one `CoreResult` per relocation. `cache` holds
    the candidate lists per local type id, shared between the programs of
    one object as libbpf shares them. Raises `CoreError` when a relocation
    is malformed or the instruction does not hold the value the local BTF
    implies.
    """
    if not program.core_relocations:
        return program, ()
    cache = {} if cache is None else cache
    insns: list[Instruction] = list(program.instructions)
    index_of = {pc: n for n, (pc, _) in enumerate(with_pcs(insns))}
    replaced: dict[int, list[Instruction]] = {}
    results = []
    for number, relo in enumerate(program.core_relocations):
        what = f"prog '{program.name}': relo #{number}"
        if relo.pc not in index_of:
            raise CoreError(f"{what}: insn #{relo.pc} is not an instruction of the program")
        resolved = _resolve(relo, local_btf, target_btf, cache, what)
        at = index_of[relo.pc]
        current = replaced.get(at, [insns[at]])
        if len(current) != 1:
            raise CoreError(f"{what}: insn #{relo.pc} was already poisoned")
        new_insns = _patch(current[0], resolved.res, f"{what}: insn #{relo.pc}")
        replaced[at] = new_insns
        poisoned = new_insns[0].opcode == CALL and new_insns[0].imm == POISON_IMM
        target = resolved.target
        results.append(
            CoreResult(
                index=number,
                relocation=relo,
                local=format_spec(resolved.local),
                target=format_spec(target) if target is not None else None,
                original=resolved.res.orig_val,
                value=resolved.res.new_val,
                poisoned=poisoned,
                target_type_id=target.root_type_id if target is not None else None,
                candidates=resolved.candidates,
                subject=_subject(resolved.local),
            )
        )
    out: list[Instruction] = []
    for n, insn in enumerate(insns):
        out.extend(replaced.get(n, [insn]))
    return replace(program, instructions=tuple(out)), tuple(results)


def is_poisoned(insn: Instruction) -> bool:
    """True for the `call 0xbad2310` a failed relocation leaves."""
    return insn.opcode == CALL and insn.src == 0 and insn.imm == POISON_IMM


def poison_message(program: Any, local_btf: Spec | None, pc: int) -> str:
    """The verifier's message for a reachable poisoned call at `pc`, libbpf's wording."""
    relo = next((r for r in program.core_relocations if r.pc in (pc, pc - 1)), None)
    head = "<invalid CO-RE relocation> failed to resolve CO-RE relocation"
    if relo is None or local_btf is None:
        return f"invalid func unknown#{POISON_IMM}"
    try:
        spec = parse_spec(local_btf, relo.type_id, relo.access, relo.kind)
    except LoadError:
        return f"{head} {kind_name(relo.kind)} [{relo.type_id}] {relo.access}"
    return f"{head} {format_spec(spec)}"


def relocate_object(obj: Any, target: Spec | None) -> CoreOutcome:
    """Every program of `obj` (an `ObjectSpec`) relocated against `target`.

    A program whose relocations fail keeps its original instructions and
    gets its `CoreError` in `errors` (it cannot run); the others are
    replaced by their relocated specs. Without relocations, `obj` comes
    back unchanged.
    """
    programs = dict(obj.programs)
    outcome = CoreOutcome(obj, target)
    if not any(p.core_relocations for p in programs.values()):
        return outcome
    if obj.btf is None or target is None:
        for name, program in programs.items():
            if program.core_relocations:
                outcome.errors[name] = CoreError(
                    f"{obj.path}: program {name}: CO-RE relocations need "
                    f"{'the object BTF' if obj.btf is None else 'a target BTF'}"
                )
        return outcome
    cache: dict[int, list[int]] = {}
    for name, program in programs.items():
        try:
            programs[name], outcome.results[name] = relocate_program(
                program, obj.btf, target, cache
            )
        except LoadError as error:  # CoreError, or malformed BTF met on the way
            outcome.errors[name] = CoreError(f"{obj.path}: {error}")
    outcome.spec = replace(obj, programs=programs)
    return outcome
