"""Command-line interface. Each subcommand lives in its own module exposing
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``; modules import
heavy dependencies (torch, transformers, Qt) inside ``run`` so ``--help`` stays instant."""
