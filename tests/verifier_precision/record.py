"""Re-record manifest.json: load every program here into the running kernel, keep its verdict.

Run as root from the repository root: `python tests/verifier_precision/record.py`.
The pattern of each entry is kept from the existing manifest (new entries get "").
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

from pybpf.elf import load_object_spec
from pybpf.testing.verdicts import kernel_verdict

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"


def main() -> None:
    """Write manifest.json from the kernel's answers."""
    old = {}
    if MANIFEST.is_file():
        old = {e["name"]: e for e in json.loads(MANIFEST.read_text())["programs"]}
    programs = []
    for path in sorted(HERE.glob("*.o")):
        for name, spec in load_object_spec(path).programs.items():
            if spec.section == ".text":
                continue
            accepted, reason = kernel_verdict(path, name)
            programs.append(
                {
                    "name": name,
                    "object": path.name,
                    "pattern": old.get(name, {}).get("pattern", ""),
                    "kernel": {
                        "verdict": "accept" if accepted else "reject",
                        "reason": reason,
                        "release": platform.release(),
                    },
                }
            )
    doc = {
        "description": (
            "Small programs, one per pattern where the kernel's verifier is more precise "
            "than a joining analysis, with the Linux kernel's verdict (root, privileged). "
            "Re-record with: python tests/verifier_precision/record.py"
        ),
        "programs": programs,
    }
    MANIFEST.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
