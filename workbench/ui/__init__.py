"""Interfaces: the command line and the interactive exit explorer."""
