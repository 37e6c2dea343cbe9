"""What a finished (or running) run directory becomes: the HTML report, seed-paired
comparisons, exported networks and model soups. Reads run directories; never trains a search."""
