"""Models: backbones, complete models of any depth, multi-exit models (DeeBERT, PABEE, probes) and their training."""
