"""Tasks and their examples: the registry, one module per source (rt, GLUE, user files), reading files, batching."""
