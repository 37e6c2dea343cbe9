"""What to try: the search space and genomes, the algorithms (PBT-NAS, its baselines and
ablations), parent selection, the operators that make children (mixing, mutation, shape-adapting
weight inheritance) and the choice of the network that a run delivers. Pure functions of
genomes, member states and fitnesses: nothing here trains, schedules or writes files."""
