"""Command-line subcommands of aiops, each a click command registered by aiops.cli."""
