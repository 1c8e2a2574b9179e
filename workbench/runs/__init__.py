"""Runs: the outputs store (one row per example x model x exit) and run folders."""
