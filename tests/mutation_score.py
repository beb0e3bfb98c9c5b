"""`make mutation`'s report: the mutation score of the pure core, and each survivor by function.

Reads ``mutmut results --all true`` (run after ``mutmut run``). A mutant counts as killed when
a test failed or timed out on it; a survivor, or one no test reached, counts against the score.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

KILLED = {"killed", "timeout"}


def main() -> int:
    mutmut = Path(sys.executable).parent / "mutmut"
    lines = subprocess.run(
        [str(mutmut), "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    outcomes: Counter[str] = Counter()
    survivors: Counter[str] = Counter()
    for line in lines:
        name, _, status = line.strip().rpartition(": ")
        if not name:
            continue
        outcomes[status] += 1
        if status not in KILLED:
            survivors[name.rsplit("__mutmut_", 1)[0]] += 1
    total = sum(outcomes.values())
    if not total:
        print("no mutants: run `mutmut run` first")
        return 1
    killed = sum(outcomes[s] for s in KILLED)
    print(f"mutants: {total}, " + ", ".join(f"{s} {n}" for s, n in sorted(outcomes.items())))
    print(f"score: {100 * killed / total:.1f}% (target >= 85%)")
    for function, count in survivors.most_common():
        print(f"  {count:4d}  {function}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
