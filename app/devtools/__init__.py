"""Developer tooling that is not part of the viewer: the tiny random-initialised checkpoints.

Tests, benchmarks, the installer build and ``--self-test`` from a checkout all write the tiny
checkpoints through here, so none of them has to import the ``tests`` package.
"""
