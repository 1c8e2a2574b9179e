"""Methods over stored outputs: exit policies, cascades, difficulty labels, operating points, and the executors
that run them for real."""
