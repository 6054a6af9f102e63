"""The ``kforge`` console script. Each module here (except main/common) adds subcommands via
``register(subparsers)``; commands call the same library code the assets call."""
