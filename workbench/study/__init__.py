"""The study: train-once stages, the main job (`reproduce`), its tables, figures and one-line answers."""
