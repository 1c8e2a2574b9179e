"""Measures: task metrics, cost in layers and FLOPs, calibration, and statistical analysis."""
