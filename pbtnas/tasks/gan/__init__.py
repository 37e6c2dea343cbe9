"""Image generation (docs/algorithm.md §5): the "gan" and "gan-hard" search spaces, their generator and
discriminator, hinge-loss training with an EMA generator, and the :class:`GanTask`."""
