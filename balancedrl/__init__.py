"""balancedrl: balanced policy optimisation in JAX."""
