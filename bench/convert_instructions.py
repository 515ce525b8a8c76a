"""Instructions per warm message of `convert` (issue 3), counted by callgrind: the one figure that
does not move with the machine's load or speed, for comparing two versions of the conversion code.

    python bench/convert_instructions.py [TREE] [CORPUS_DIR]

Runs a child under `valgrind --tool=callgrind` twice: once loading the specs and converting the
corpus once (maps compiled, caches warm), once doing that and then 2 more rounds; the difference
divided by 2 x messages is what a warm message costs. TREE (default: this checkout) holds the
`mappers/` and `adapters/` to measure. Needs valgrind (apt-get install valgrind); ~2 minutes.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "ms-fhir-converter" / "hl7v2"

_CHILD = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from pathlib import Path
from adapters.hl7v2 import parse
from adapters.hl7v2.batch import split_messages
from gateway.runtime import tune_collector
from mappers import convert_message
from mappers.specs import load_specs
messages = [c.payload for p in sorted(Path(sys.argv[3]).glob("*.hl7")) for c in split_messages(p.read_bytes())]
load_specs()
tune_collector()
for _ in range(1 + int(sys.argv[4])):
    for raw in messages:
        convert_message(parse(raw), raw)
print(len(messages))
"""


def collected(tree: Path, corpus: Path, rounds: int) -> tuple[int, int]:
    """(instructions callgrind collected, messages per round) for one child run."""
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", _CHILD,
         str(tree), str(ROOT), str(corpus), str(rounds)],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # a random seed moved the figure by up to 1.4% from run to run
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise SystemExit(f"no callgrind total in its output:\n{run.stderr[-2000:]}")
    return int(found.group(1)), int(run.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", nargs="?", type=Path, default=ROOT)
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()
    base, n = collected(args.tree.resolve(), args.corpus, 0)
    more, _ = collected(args.tree.resolve(), args.corpus, 2)
    print(f"{(more - base) / (2 * n) / 1e6:.3f}M instructions per warm message ({n} messages, {args.tree})")


if __name__ == "__main__":
    main()
