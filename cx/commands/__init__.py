"""The ``cx`` subcommands, one module each: ``HELP``, ``configure(parser)`` and
``run(args, settings)``."""
