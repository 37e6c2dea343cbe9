"""The run directory on disk: config, journal, manifest, checkpoints, best network, summary,
the lock that keeps one writer per run, and the one atomic-write helper every writer uses."""
