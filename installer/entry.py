"""Frozen entry point of the CARE Viewer bundle: the same ``main`` as the ``care-viewer`` script."""
import multiprocessing
import sys

if __name__ == "__main__":
    # torch/transformers may start worker processes; in a frozen app they re-enter here.
    multiprocessing.freeze_support()
    from app.cli.main import main

    sys.exit(main())
