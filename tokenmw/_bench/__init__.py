"""``tokenmw bench``: the seed-like workload, the naive optimizer it is measured against, and the
measurements (private; the command line is ``tokenmw._cli.bench``)."""
