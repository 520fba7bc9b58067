"""Run PREVAIL's YAML verifier test cases (`../shared/prevail-tests/*.yaml`).

A case gives an entry invariant (`pre`, constraint strings), code in
labelled blocks, the expected invariant at exit (`post`, compared as a
*set of strings*, `_|_` for bottom) and the expected messages (first error
plus unreachable-code notes). As in PREVAIL's `ebpf_yaml.cpp`, each code
line is one label (an `lddw` counts once), the context is 64 bytes with
`data` at 0 and `data_end` at 4, the map is 4-byte key and value, and
registers not mentioned in `pre` are unconstrained (not even `r10`).

Lines are turned into IR here: `assume` lines and conditional jumps (also
`&!=`, which the assembler rejects) are parsed directly, `call <label>` is a
local call, and the rest goes through `pybpf.isa.assemble`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..isa import assemble
from . import ir
from .constraints import ConstraintError, parse_invariant
from .fixpoint import AnalysisOptions, NotSupported, analyze_program

BOTTOM = "_|_"


@dataclass
class YamlCase:
    """One test case of a YAML file."""

    file: str
    name: str
    pre: list[str]
    blocks: list[tuple[str, list[str]]]
    post: list[str]
    messages: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    observe: list[dict] | None = None
    expected_exception: str | None = None
    occurrence: int = 1

    @property
    def id(self) -> str:
        """`file::test-case` (`#2`… for repeated names), the key of the known-failures list."""
        suffix = f" #{self.occurrence}" if self.occurrence > 1 else ""
        return f"{self.file}::{self.name}{suffix}"


@dataclass
class CaseResult:
    """The outcome of one case: `ok`, or the differences."""

    case: YamlCase
    ok: bool
    unexpected_post: set[str] = field(default_factory=set)
    missing_post: set[str] = field(default_factory=set)
    unexpected_messages: set[str] = field(default_factory=set)
    missing_messages: set[str] = field(default_factory=set)
    error: str | None = None

    def describe(self) -> str:
        """A readable diff."""
        lines = [f"{self.case.id}: {'pass' if self.ok else 'FAIL'}"]
        if self.error:
            lines.append(f"  error: {self.error}")
        for title, items in (
            ("unexpected post", self.unexpected_post),
            ("missing post", self.missing_post),
            ("unexpected message", self.unexpected_messages),
            ("missing message", self.missing_messages),
        ):
            lines.extend(f"  {title}: {s}" for s in sorted(items))
        return "\n".join(lines)


def load_cases(path: str | Path) -> list[YamlCase]:
    """Every case of one YAML file."""
    import yaml

    path = Path(path)
    cases = []
    seen: dict[str, int] = {}
    with path.open() as f:
        for doc in yaml.safe_load_all(f):
            if not doc:
                continue
            code = doc.get("code") or {}
            blocks = [(str(k), str(v or "").splitlines()) for k, v in code.items()]
            name = str(doc["test-case"])
            seen[name] = seen.get(name, 0) + 1
            cases.append(
                YamlCase(
                    file=path.name,
                    name=name,
                    pre=[str(s) for s in doc.get("pre") or []],
                    blocks=blocks,
                    post=[str(s) for s in doc.get("post") or []],
                    messages=[str(s) for s in doc.get("messages") or []],
                    options=[str(s) for s in doc.get("options") or []],
                    observe=doc.get("observe"),
                    expected_exception=doc.get("expected-exception"),
                    occurrence=seen[name],
                )
            )
    return cases


def iter_all_cases(directory: str | Path) -> Iterator[YamlCase]:
    """Every case of every `*.yaml` in `directory`, in file order."""
    for path in sorted(Path(directory).glob("*.yaml")):
        yield from load_cases(path)


# ---------------------------------------------------------------- code lines

_REG = r"([rw])(\d+)"
_COND_OPS = {op.value: op for op in ir.CondOp}
_COND_RE = re.compile(rf"^{_REG}\s*(&==|&!=|s<=|s>=|s<|s>|==|!=|<=|>=|<|>)\s*(\S+)$")
_IF_RE = re.compile(r"^if\s+(.+?)\s+goto\s+(<\w+>|[+-]?\d+)$")
_GOTO_RE = re.compile(r"^goto\s+(<\w+>)$")
_CALL_LABEL_RE = re.compile(r"^call\s+(<\w+>)$")


class CodeError(Exception):
    """A code line that cannot be turned into an instruction."""


def _parse_value(text: str) -> ir.Value:
    m = re.fullmatch(_REG, text)
    if m:
        return ir.Reg(int(m.group(2)))
    return ir.Imm(int(text, 0))


def parse_condition(text: str) -> ir.Condition:
    """`r1 < 5`, `w2 s>= r3`, … as a `Condition`."""
    m = _COND_RE.match(text.strip())
    if not m:
        raise CodeError(f"bad condition: {text!r}")
    is64 = m.group(1) == "r"
    right = _parse_value(m.group(4))
    if isinstance(right, ir.Imm) and 0x80000000 <= right.v <= 0xFFFFFFFF:
        right = ir.Imm(right.v - (1 << 32))  # a jump's immediate is a sign-extended 32-bit field
    return ir.Condition(_COND_OPS[m.group(3)], ir.Reg(int(m.group(2))), right, is64)


def _target(text: str, labels: dict[str, int], here: int) -> int:
    if text.startswith("<"):
        if text not in labels:
            raise CodeError(f"unknown label {text}")
        return labels[text]
    return here + 1 + int(text)


def parse_code(blocks: list[tuple[str, list[str]]]) -> dict[int, ir.IrInstruction]:
    """Label (line number across blocks) → IR instruction."""
    labels: dict[str, int] = {}
    index = 0
    for name, lines in blocks:
        labels[name] = index
        index += len(lines)
    program: dict[int, ir.IrInstruction] = {}
    index = 0
    for _, lines in blocks:
        for raw in lines:
            program[index] = parse_line(raw, labels, index)
            index += 1
    return program


def parse_line(raw: str, labels: dict[str, int], here: int) -> ir.IrInstruction:
    """One code line as an IR instruction (`Undefined` when it cannot be read)."""
    line = raw.split(";", 1)[0].strip()
    if line.startswith("assume "):
        return ir.Assume(parse_condition(line[len("assume ") :]))
    m = _IF_RE.match(line)
    if m:
        return ir.Jmp(parse_condition(m.group(1)), _target(m.group(2), labels, here))
    m = _GOTO_RE.match(line)
    if m:
        return ir.Jmp(None, _target(m.group(1), labels, here))
    m = _CALL_LABEL_RE.match(line)
    if m:
        return ir.CallLocal(_target(m.group(1), labels, here))
    try:
        insns = assemble(line)
    except Exception:  # noqa: BLE001 - any unreadable line is Undefined, as in PREVAIL
        return ir.Undefined(0)
    if len(insns) != 1:
        return ir.Undefined(0)
    return ir.from_instruction(insns[0], here, here + 1)


# ---------------------------------------------------------------- running


def _options(case: YamlCase) -> AnalysisOptions:
    # PREVAIL's YAML platform has one map and checks only the context's size.
    opts = AnalysisOptions(map_count=1, linux_ctx_fields=False)
    for name in case.options:
        if name == "!allow_division_by_zero":
            opts.allow_division_by_zero = False
        elif name == "termination":
            opts.check_termination = True
        elif name == "big_endian":
            opts.big_endian = True
        elif name == "!big_endian":
            opts.big_endian = False
        elif name == "simplify":
            opts.simplify = True
        else:
            raise CodeError(f"Unknown option: {name}")
    return opts


def _compare(case: YamlCase, post: set[str], messages: set[str]) -> CaseResult:
    expected_post = set(case.post)
    expected_messages = set(case.messages)
    res = CaseResult(
        case,
        ok=False,
        unexpected_post=post - expected_post,
        missing_post=expected_post - post,
        unexpected_messages=messages - expected_messages,
        missing_messages=expected_messages - messages,
    )
    res.ok = not (
        res.unexpected_post or res.missing_post or res.unexpected_messages or res.missing_messages
    )
    return res


@dataclass(frozen=True)
class Observation:
    """An `observe` clause: constraints checked against the invariant at a label."""

    label: int | str
    point: str
    mode: str
    constraints: list[str]


class CaseInputError(Exception):
    """A malformed case (what `expected-exception` fixtures expect)."""


def _observation_label(node: object) -> int | str:
    if node is None or isinstance(node, list | dict):
        raise CaseInputError(
            "Invalid observation label; expected scalar 'entry'/'exit' or instruction index"
        )
    text = str(node)
    if text in ("entry", "exit"):
        return text
    if not re.fullmatch(r"\d+", text):
        raise CaseInputError(f"Invalid observation label: {text}")
    return int(text)


def parse_observations(node: object) -> list[Observation]:
    """The `observe` list, validated as PREVAIL does (same error texts)."""
    if node is None:
        return []
    if not isinstance(node, list):
        raise CaseInputError("observe must be a sequence")
    out = []
    for item in node:
        if not isinstance(item, dict):
            raise CaseInputError("observe item must be a map")
        label = _observation_label(item.get("at"))
        point = str(item.get("point") or "pre")
        if point not in ("pre", "post"):
            raise CaseInputError(f"Invalid observation point: {point}")
        mode = str(item.get("mode") or "consistent")
        if mode not in ("consistent", "entailed"):
            raise CaseInputError(f"Invalid observation mode: {mode}")
        if item.get("constraints") is None:
            raise CaseInputError("observe item missing required 'constraints' field")
        if not isinstance(item["constraints"], list):
            raise CaseInputError("observe.constraints must be a sequence of strings")
        out.append(Observation(label, point, mode, [str(c) for c in item["constraints"]]))
    return out


def _observation_fails(result, obs: Observation) -> bool:
    states = result.pre if obs.point == "pre" or obs.label == "exit" else result.post
    state = states.get(obs.label)
    observed = parse_invariant(obs.constraints)
    if state is None or observed.is_bottom() or state.is_bottom():
        return True
    if obs.mode == "entailed":
        return not observed.leq(state)
    return state.meet(observed).is_bottom()


def run_case(case: YamlCase) -> CaseResult:
    """Analyse one case and compare with its expectations."""
    try:
        observations = parse_observations(case.observe)
        opts = _options(case)
        program = parse_code(case.blocks)
        entry = parse_invariant(case.pre)
    except CaseInputError as e:
        if case.expected_exception is not None:
            ok = str(e) == case.expected_exception
            return CaseResult(case, ok=ok, error=None if ok else f"exception: {e}")
        return CaseResult(case, ok=False, error=str(e))
    except (CodeError, ConstraintError) as e:
        return CaseResult(case, ok=False, error=str(e))
    if case.expected_exception is not None:
        return CaseResult(case, ok=False, error="expected an exception")
    try:
        result = analyze_program(program, entry, opts)
    except NotSupported as e:
        return CaseResult(case, ok=False, error=str(e))
    if result.control_flow_error is not None:
        return _compare(case, set(), {result.control_flow_error})
    messages = result.messages()
    for obs in observations:
        if _observation_fails(result, obs):
            messages.add(f"{obs.label}: observation {obs.mode} failed at {obs.point}")
    return _compare(case, result.exit_strings(), messages)


# ---------------------------------------------------------------- reporting


def failure_reason(result: CaseResult) -> str:
    """A one-line reason for a failing case (for the known-failures list)."""
    if result.error:
        return result.error
    parts = []
    if result.missing_messages or result.unexpected_messages:
        first = sorted(result.missing_messages) or sorted(result.unexpected_messages)
        kind = "missing" if result.missing_messages else "unexpected"
        parts.append(f"{kind} message {first[0]!r}")
    if result.missing_post or result.unexpected_post:
        first = sorted(result.missing_post) or sorted(result.unexpected_post)
        kind = "missing" if result.missing_post else "unexpected"
        parts.append(f"{kind} post {first[0]!r}")
    return "; ".join(parts)[:160]


def run_all(directory: str | Path) -> list[CaseResult]:
    """Run every case of every YAML file in `directory`."""
    return [run_case(case) for case in iter_all_cases(directory)]


def pass_counts(results: list[CaseResult]) -> dict[str, tuple[int, int]]:
    """File → (passed, total)."""
    counts: dict[str, list[int]] = {}
    for r in results:
        c = counts.setdefault(r.case.file, [0, 0])
        c[0] += r.ok
        c[1] += 1
    return {f: (p, t) for f, (p, t) in sorted(counts.items())}


def format_table(counts: dict[str, tuple[int, int]]) -> str:
    """A Markdown table of pass counts, with the total."""
    lines = ["| file | pass | total |", "|---|---:|---:|"]
    for f, (p, t) in counts.items():
        lines.append(f"| {f} | {p} | {t} |")
    passed = sum(p for p, _ in counts.values())
    total = sum(t for _, t in counts.values())
    lines.append(f"| **total** | **{passed}** | **{total}** |")
    return "\n".join(lines)


def known_failures_text(results: list[CaseResult]) -> str:
    """The known-failures file: `file::case<TAB>reason`, one failing case a line."""
    header = (
        "# PREVAIL YAML cases pybpf's verifier does not pass yet (strict xfails).\n"
        "# Generated by `python -m pybpf.verifier.prevail_yaml --write-known-failures`.\n"
        "# Format: file::test-case<TAB>reason\n"
    )
    rows = [f"{r.case.id}\t{failure_reason(r)}" for r in results if not r.ok]
    return header + "\n".join(rows) + "\n"


def read_known_failures(path: str | Path) -> dict[str, str]:
    """`file::case` → reason, from a known-failures file."""
    out: dict[str, str] = {}
    p = Path(path)
    if not p.is_file():
        return out
    for line in p.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, _, reason = line.partition("\t")
        out[key] = reason
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m pybpf.verifier.prevail_yaml DIR [--write-known-failures FILE] [-v]`."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--write-known-failures", metavar="FILE")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each failure's diff")
    args = parser.parse_args(argv)
    results = run_all(args.directory)
    if args.verbose:
        for r in results:
            if not r.ok:
                print(r.describe())
    print(format_table(pass_counts(results)))
    if args.write_known_failures:
        Path(args.write_known_failures).write_text(known_failures_text(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
