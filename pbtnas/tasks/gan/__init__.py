"""Image generation (SPEC §4.1/§4.2): the "gan" and "gan-hard" search spaces, their generator and
discriminator, hinge-loss training with an EMA generator, and the :class:`GanTask`."""
