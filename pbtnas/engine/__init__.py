"""How a run proceeds: the loop that trains members on a backend and applies the algorithm
between steps (synchronous, asynchronous and BOHB schedules), seeding, progress, loggers and
deterministic fault injection."""
