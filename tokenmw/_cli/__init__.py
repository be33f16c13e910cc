"""The ``tokenmw`` command line: one module per subcommand."""
