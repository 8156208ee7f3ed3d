"""Cost of the meta-gradient component weights (``balancedrl.meta_weighting``) against plain PPO steps.

Policy: a tiny MLP (obs 16 -> hidden -> hidden -> 4 actions, tanh), C = 6 advantage components, Adam on
the policy (``eps_root=1e-16``, see the module docstring) and on the weights. Timed, each jitted:

* ``plain_step``   one PPO minibatch update: grad of the clipped surrogate with the combined advantage
                   (weights fixed) + ``tx.update`` + ``apply_updates``;
* ``plain_two``    two such updates (minibatch 1, then minibatch 2): the data a meta step reads;
* ``meta_step``    ``meta_gradient_step`` (weights only; the policy is not changed);
* ``meta_adopt``   ``meta_gradient`` with its inner step adopted as the policy update of minibatch 1,
                   the weights' Adam step, then a plain update on minibatch 2: what a trainer pays
                   for two minibatches with meta-learned weights.

Each of ``--rounds`` rounds times ``--reps`` calls of every function, interleaved, and keeps the median
per call; reported: the median over rounds and the ratios. Design aim (issue 16): meta update <= 2x a
plain update, i.e. ``meta_adopt / plain_two <= 2``. Also printed: the overhead of one meta step per PPO
update of ``epochs x minibatches`` plain steps.

Sizes (``--sizes``, minibatch x hidden): 256x64 is dominated by dispatch overhead on CPU, 2048x256 by
compute; both are reported.

Usage: ``python benchmarks/meta_gradient_cost.py [--quick] [--sizes 256x64,2048x256]``
Writes ``benchmarks/results/meta_gradient_cost.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from balancedrl.meta_weighting import (  # noqa: E402
    MetaGradientConfig,
    clipped_surrogate_loss_fn,
    combine_advantages,
    make_eta_optimizer,
    meta_gradient,
    meta_gradient_step,
    meta_weights_init,
)
from benchmarks.common import block, format_table, machine_info, machine_line, write_json  # noqa: E402

OBS, ACTIONS, C = 16, 4, 6


def init_mlp(key, hidden):
    sizes = [OBS, hidden, hidden, ACTIONS]
    keys = jax.random.split(key, len(sizes) - 1)
    return [{"w": jax.random.normal(k, (a, b)) / jnp.sqrt(a), "b": jnp.zeros((b,))}
            for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def logits_fn(theta, obs):
    h = obs
    for i, layer in enumerate(theta):
        h = h @ layer["w"] + layer["b"]
        if i < len(theta) - 1:
            h = jnp.tanh(h)
    return h


def logp_fn(theta, batch):
    lp = jax.nn.log_softmax(logits_fn(theta, batch["obs"]))
    return jnp.take_along_axis(lp, batch["action"][:, None], axis=1)[:, 0]


def make_batch(key, theta, n):
    k1, k2, k3 = jax.random.split(key, 3)
    obs = jax.random.normal(k1, (n, OBS))
    action = jax.random.categorical(k2, logits_fn(theta, obs))
    batch = {"obs": obs, "action": action, "adv_components": jax.random.normal(k3, (n, C))}
    batch["logp_old"] = logp_fn(theta, batch) - 0.05  # ratios != 1, as after the first minibatch
    return batch


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds x 20 reps")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--sizes", default="256x64,2048x256", help="comma-separated MINIBATCHxHIDDEN")
    ap.add_argument("--epochs", type=int, default=4, help="for the per-update overhead line")
    ap.add_argument("--minibatches", type=int, default=4, help="for the per-update overhead line")
    a = ap.parse_args(argv)
    rounds, reps = (3, 20) if a.quick else (a.rounds, a.reps)
    machine = machine_info()
    try:
        sizes = [tuple(int(v) for v in s.split("x")) for s in a.sizes.split(",")]
        assert all(len(s) == 2 and min(s) > 0 for s in sizes)
    except (ValueError, AssertionError):
        ap.error(f"--sizes={a.sizes!r}: expected comma-separated MINIBATCHxHIDDEN with positive ints, "
                 "e.g. 256x64,2048x256")
    results = [measure(batch, hidden, rounds, reps, a.epochs, a.minibatches, machine) for batch, hidden in sizes]
    payload = {"quick": a.quick, "rounds": rounds, "reps": reps, "components": C, "results": results}
    path = write_json("meta_gradient_cost", payload, machine)
    print(f"wrote {path}")
    return payload


def measure(batch_size, hidden, rounds, reps, epochs, minibatches, machine) -> dict:

    cfg = MetaGradientConfig(C)
    tx = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(3e-4, eps_root=1e-16))
    eta_tx = make_eta_optimizer(1e-2)
    loss_fn = clipped_surrogate_loss_fn(logp_fn, 0.2)
    k0, k1, k2 = jax.random.split(jax.random.PRNGKey(0), 3)
    theta = init_mlp(k0, hidden)
    b1, b2 = make_batch(k1, theta, batch_size), make_batch(k2, theta, batch_size)
    eta = meta_weights_init(cfg)
    eta_state = eta_tx.init(eta)
    # populate Adam's moments (a running trainer's state)
    opt_state = tx.init(theta)
    for _ in range(3):
        g = jax.grad(lambda th: loss_fn(th, b1, b1["adv_components"][:, 0])[0])(theta)
        _, opt_state = tx.update(g, opt_state, theta)

    def plain(theta, opt_state, batch, eta):
        adv, _ = combine_advantages(jax.lax.stop_gradient(eta), batch["adv_components"], cfg)
        grads = jax.grad(lambda th: loss_fn(th, batch, adv)[0])(theta)
        updates, opt_state = tx.update(grads, opt_state, theta)
        return optax.apply_updates(theta, updates), opt_state

    @jax.jit
    def plain_step(theta, opt_state, b1, b2, eta, eta_state):
        return plain(theta, opt_state, b1, eta)

    @jax.jit
    def plain_two(theta, opt_state, b1, b2, eta, eta_state):
        theta, opt_state = plain(theta, opt_state, b1, eta)
        return plain(theta, opt_state, b2, eta)

    meta_step_jit = jax.jit(partial(meta_gradient_step, policy_loss_fn=loss_fn, tx=tx, eta_tx=eta_tx, config=cfg))

    def meta_step(theta, opt_state, b1, b2, eta, eta_state):
        return meta_step_jit(eta, eta_state, theta, opt_state, b1, b2)

    @jax.jit
    def meta_adopt(theta, opt_state, b1, b2, eta, eta_state):
        grads, (theta, opt_state, _) = meta_gradient(eta, theta, opt_state, b1, b2, policy_loss_fn=loss_fn,
                                                     tx=tx, config=cfg)
        upd, eta_state = eta_tx.update(grads, eta_state, eta)
        eta = optax.apply_updates(eta, upd)
        theta, opt_state = plain(theta, opt_state, b2, eta)
        return theta, opt_state, eta, eta_state

    fns = {"plain_step": plain_step, "plain_two": plain_two, "meta_step": meta_step, "meta_adopt": meta_adopt}
    args = (theta, opt_state, b1, b2, eta, eta_state)
    compile_s = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        block(fn(*args))
        compile_s[name] = time.perf_counter() - t0
    times = {n: [] for n in fns}
    for _ in range(rounds):
        for n, fn in fns.items():
            per = []
            for _ in range(reps):
                t0 = time.perf_counter()
                block(fn(*args))
                per.append(time.perf_counter() - t0)
            times[n].append(statistics.median(per))
    med = {n: statistics.median(t) for n, t in times.items()}
    rows = [{"function": n, "median_ms": 1e3 * med[n], "x_plain_step": med[n] / med["plain_step"],
             "x_plain_two": med[n] / med["plain_two"], "compile_s": compile_s[n], "times_s": times[n]}
            for n in fns]
    n_plain = epochs * minibatches
    overhead = med["meta_step"] / (n_plain * med["plain_step"])
    print(f"\nmeta-gradient cost: MLP {OBS}-{hidden}-{hidden}-{ACTIONS}, minibatch {batch_size}, C={C}, "
          f"{rounds} rounds x {reps} reps, {machine_line(machine)}")
    print(format_table(rows, [("function", "function", ""), ("median_ms", "median ms", ".3f"),
                              ("x_plain_step", "x plain_step", ".2f"), ("x_plain_two", "x plain_two", ".2f")]))
    ratio = med["meta_adopt"] / med["plain_two"]
    print(f"meta_adopt / plain_two = {ratio:.2f}x (design aim <= 2x: {'met' if ratio <= 2 else 'NOT met'})")
    print(f"meta_step / plain_step = {med['meta_step'] / med['plain_step']:.2f}x; one meta step per PPO update "
          f"of {epochs} x {minibatches} plain steps adds {100 * overhead:.0f}%")
    return {"batch": batch_size, "hidden": hidden, "rows": rows, "meta_adopt_over_plain_two": ratio,
            "meta_step_over_plain_step": med["meta_step"] / med["plain_step"],
            "per_update_overhead": {"epochs": epochs, "minibatches": minibatches, "fraction": overhead}}


if __name__ == "__main__":
    main()
