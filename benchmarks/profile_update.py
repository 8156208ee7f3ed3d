"""Where one training update's time goes: each part of ``update_step`` jitted and timed alone.

Parts (``balancedrl/training``): the rollout (``rollout.collect``), split into its policy forward
(``policy_apply`` on the rollout's observations, one call per step) and its environment step (the
vmapped ``env.step`` on stored states and actions); the bootstrap values (``targets.bootstrap_values``: the full pass over every final observation, as before,
and the trainer's pass where the GAE reads them);
GAE and the batch (``targets.compute_targets``); the learning phase
(``learner.learn``), split into one measured minibatch step (forward, per-loss vjps, balancer,
optimizer) and one reuse step (one backward pass, optimizer); and the whole update
(``trainer.update_step``). Every part is compiled first, then timed ``--rounds`` times (median).

Usage: ``python benchmarks/profile_update.py [--config default.yaml] [--set key=value ...] [--rounds 5]``
Writes ``benchmarks/results/profile_update.json`` (``--out NAME`` changes the name).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks.common import (  # noqa: E402
    block,
    load_bench_config,
    machine_info,
    machine_line,
    median,
    time_call,
    write_json,
)


def parts(cfg):
    """``{name: (jitted fn, args)}`` for every timed part of one update."""
    from balancedrl.training import learner, rollout, targets
    from balancedrl.training.learner import LearnCarry
    from balancedrl.training.trainer import make_train, update_step

    tr = make_train(cfg)
    ctx = tr.context
    runner = block(jax.jit(tr.init)(jax.random.PRNGKey(0)))
    # warm the policy a little so the rollout is not all-initial-state
    runner, _ = jax.jit(tr.update)(runner)
    ratio = jnp.zeros(())
    collect = jax.jit(lambda r: rollout.collect(ctx, r, ratio))
    runner2, traj = block(collect(runner))
    T, E = traj.terminated.shape
    net = runner.params["network"]

    def policy_fwd(params, obs_t):  # one policy call per step, like the rollout
        return jax.lax.map(lambda o: ctx.policy_apply(params, o), obs_t)

    ad = ctx.adapter
    env_states = jax.tree_util.tree_map(lambda x: x, runner.env_state)

    def env_steps(state, key):
        def body(s, k):
            ka, ks = jax.random.split(k)
            acts = jax.vmap(ad.to_env_action)(
                jax.random.randint(ka, (E, ad.num_slots), 0, ad.num_discrete),
                jnp.broadcast_to(jnp.asarray((ad.cont_low + ad.cont_high) / 2, jnp.float32), (E, ad.num_slots, ad.num_continuous)),
            )
            o, s, r, te, tr_, info = jax.vmap(ad.env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(ks, E), s, acts, ad.env_params
            )
            return s, (o, r)

        return jax.lax.scan(body, state, jax.random.split(key, T))

    batch, _, _ = jax.jit(lambda p, rn, t: targets.compute_targets(ctx, p, rn, t))(net, runner.reward_norm, traj)
    w0 = jnp.asarray([ctx.layout.fixed_coefs[i] for i in ctx.layout.balanced], jnp.float32)
    carry = LearnCarry(runner.params, runner.opt_state, runner.balancer, w0)
    nmb = cfg.trainer.num_minibatches
    mb = jax.tree_util.tree_map(lambda x: x[: x.shape[0] // nmb], batch)
    first, others = learner.step_kinds(ctx)
    k = jax.random.PRNGKey(1)
    out = {
        "update (whole)": (jax.jit(lambda r: update_step(ctx, r)), (runner,)),
        "rollout (collect)": (collect, (runner,)),
        "  rollout: policy forward x T": (jax.jit(policy_fwd), (net, traj.obs)),
        "  rollout: env step x T": (jax.jit(env_steps), (env_states, k)),
        "bootstrap values, every final observation": (
            jax.jit(lambda p, t: targets.bootstrap_values(ctx, p, t)), (net, traj)
        ),
        "bootstrap values, where read (the trainer's)": (
            jax.jit(lambda p, t, o: targets.bootstrap_values(ctx, p, t, o)), (net, traj, runner2.obs)
        ),
        "targets (incl. bootstrap)": (
            jax.jit(lambda p, rn, t, o: targets.compute_targets(ctx, p, rn, t, o)),
            (net, runner.reward_norm, traj, runner2.obs),
        ),
        "learn (all epochs)": (jax.jit(lambda c, b: learner.learn(ctx, c, b, 0.01, k)), (carry, batch)),
        "  first minibatch step (%s)" % first.__name__: (
            jax.jit(lambda c, m: first(ctx, c, m, 0.01, k)), (carry, mb)
        ),
        "  other minibatch step (%s)" % others.__name__: (
            jax.jit(lambda c, m: others(ctx, c, m, 0.01, k)), (carry, mb)
        ),
        "  minibatch forward only": (
            jax.jit(lambda p, m: __import__("balancedrl.training.losses", fromlist=["x"]).loss_vector(ctx, p, m, 0.01)),
            (runner.params, mb),
        ),
    }
    return out, cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="default.yaml")
    ap.add_argument("--set", nargs="*", default=[], help="config overrides key=value")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="profile_update")
    a = ap.parse_args(argv)
    cfg = load_bench_config(a.config, a.set)
    ps, cfg = parts(cfg)
    compiled = {}
    for name, (fn, args) in ps.items():
        compiled[name] = (fn.lower(*args).compile(), args)
    times = {name: [] for name in ps}
    for _ in range(a.rounds):  # interleaved rounds: load changes hit every part alike
        for name, (fn, args) in compiled.items():
            dt, _ = time_call(fn, *args)
            times[name].append(dt)
    whole = median(times["update (whole)"])
    rows = []
    print(f"profile of one update, {a.config} {' '.join(a.set)}; {machine_line()}")
    for name in ps:
        m = median(times[name])
        rows.append({"part": name.strip(), "median_ms": 1e3 * m, "share_of_update": m / whole, "times_s": times[name]})
        print(f"{name:<45} {1e3 * m:9.1f} ms  {100 * m / whole:6.1f} %")
    write_json(a.out, {"config": a.config, "overrides": a.set, "rounds": a.rounds, "rows": rows}, machine_info())
    return rows


if __name__ == "__main__":
    main()
