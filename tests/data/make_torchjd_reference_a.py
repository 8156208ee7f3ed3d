"""Reference vectors for the Gramian balancers (pcgrad, mgda, cagrad, imtl_g, config) from TorchJD 0.18.0.

Run in a throwaway venv (torch is never a dependency of balancedrl or its tests)::

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install "torchjd[full]==0.18.0"
    /tmp/ref/bin/python tests/data/make_torchjd_reference_a.py   # writes tests/data/torchjd_reference_a.json

Every case is a Jacobian ``J [K, 6]`` (float64) and, per method, TorchJD's aggregated vector and the weights
its Weighting gives on ``G = J J^T``. PCGrad draws ``torch.randperm(K)`` once per loss; the script seeds torch,
runs the aggregator, reseeds and replays the K draws, and stores those orders so the JAX version can be fed
the same permutations.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
import torchjd
from torchjd.aggregation import (
    IMTLG,
    MGDA,
    CAGrad,
    CAGradWeighting,
    ConFIG,
    IMTLGWeighting,
    MGDAWeighting,
    PCGrad,
    PCGradWeighting,
)

DIM = 6
CAGRAD_C = 0.5


def cases() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(20260512)
    out = []
    for k in (2, 3, 4):
        out.append((f"random_k{k}", rng.normal(size=(k, DIM))))
        out.append((f"random2_k{k}", rng.normal(size=(k, DIM))))
        # Positive multiples of one integer vector: the Gramian is exactly singular in float32 and float64.
        base = rng.integers(-3, 4, size=DIM).astype(np.float64)
        base[0] = 1.0
        out.append((f"aligned_k{k}", np.stack([2.0**i * base for i in range(k)])))
        # g and -g (plus generic rows), and g with -0.5 g.
        j = rng.normal(size=(k, DIM))
        j[1] = -j[0]
        out.append((f"opposed_k{k}", j))
        j = rng.normal(size=(k, DIM))
        j[1] = -0.5 * j[0]
        out.append((f"opposed_half_k{k}", j))
        # Nearly opposed (generic, conflicting).
        j = rng.normal(size=(k, DIM))
        j[1] = -j[0] + 0.3 * rng.normal(size=DIM)
        out.append((f"conflict_k{k}", j))
        j = rng.normal(size=(k, DIM))
        j[k - 1] = 0.0
        out.append((f"zero_row_k{k}", j))
        # Row norms from 1e-3 to 1e3.
        j = rng.normal(size=(k, DIM))
        j = j / np.linalg.norm(j, axis=1, keepdims=True) * np.logspace(-3, 3, k)[:, None]
        out.append((f"misscaled_k{k}", j))
        j = rng.normal(size=(k, DIM))
        j = j / np.linalg.norm(j, axis=1, keepdims=True) * np.logspace(3, -3, k)[:, None]
        out.append((f"misscaled_rev_k{k}", j))
    # Rank-deficient (K > rank = 2) with row norms spread over 1e-2..1e2: pinv's rank decision matters.
    rng_lr = np.random.default_rng(7)
    for k in (3, 4):
        for rep in range(2):
            j = rng_lr.normal(size=(k, 2)) @ rng_lr.normal(size=(2, DIM))
            j *= 10.0 ** rng_lr.uniform(-2.0, 2.0, size=(k, 1))
            out.append((f"low_rank{rep}_k{k}", j))
    out.append(("all_zero_k2", np.zeros((2, DIM))))
    out.append(("tiny_k3", 1e-3 * rng.normal(size=(3, DIM))))
    return out


def main() -> None:
    torch.set_default_dtype(torch.float64)
    records = []
    for idx, (name, j_np) in enumerate(cases()):
        J = torch.from_numpy(j_np)
        G = J @ J.T
        k = J.shape[0]
        rec = {"name": name, "J": j_np.tolist()}

        seed = 1000 + idx
        torch.manual_seed(seed)
        pc = PCGrad()(J)
        torch.manual_seed(seed)
        perms = [torch.randperm(k).tolist() for _ in range(k)]
        torch.manual_seed(seed)
        pc_w = PCGradWeighting()(G)
        rec["pcgrad"] = {"output": pc.tolist(), "weights": pc_w.tolist(), "permutations": perms}

        rec["mgda"] = {"output": MGDA()(J).tolist(), "weights": MGDAWeighting()(G).tolist()}
        rec["cagrad"] = {
            "output": CAGrad(c=CAGRAD_C)(J).tolist(),
            "weights": CAGradWeighting(c=CAGRAD_C)(G).tolist(),
        }
        rec["imtl_g"] = {"output": IMTLG()(J).tolist(), "weights": IMTLGWeighting()(G).tolist()}
        rec["config"] = {"output": ConFIG()(J).tolist()}
        records.append(rec)

    payload = {
        "source": f"torchjd {torchjd.__version__ if hasattr(torchjd, '__version__') else '0.18.0'}, "
        f"torch {torch.__version__}, float64",
        "cagrad_c": CAGRAD_C,
        "cases": records,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torchjd_reference_a.json")
    with open(path, "w") as f:
        json.dump(payload, f, indent=None)
        f.write("\n")
    print(f"wrote {len(records)} cases to {path}")


if __name__ == "__main__":
    main()
