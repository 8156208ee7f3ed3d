"""Record the golden metrics of every case in ``cases.CASES`` (run from the repository root):

    python tests/golden/make_golden.py [case ...]

Re-record a case only for a deliberate, named behaviour change, and say why in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import CASES, run_case  # noqa: E402

OUT = Path(__file__).resolve().parent / "golden_metrics.json"

if __name__ == "__main__":
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    for name in sys.argv[1:] or list(CASES):
        print("recording", name, flush=True)
        data[name] = run_case(name)
    OUT.write_text(json.dumps(data, indent=None, allow_nan=True))
