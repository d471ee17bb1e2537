"""Many runs: sweeps, peak searches and the seed systems' simulated twins."""
