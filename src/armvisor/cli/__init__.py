"""The ``armvisor`` command line: :mod:`~armvisor.cli.main` dispatches to one module per
subcommand (``run``: :mod:`~armvisor.cli.run`)."""
