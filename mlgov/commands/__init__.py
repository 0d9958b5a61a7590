"""The `mlgov` command's subcommands, by what they do (mlgov/cli.py wires them together): each module
adds its subcommands to the parser (`add_parsers`) with a handler that returns the exit code."""

# The exit codes every subcommand answers with.
PASS, FAIL, ERROR = 0, 1, 2
INTERRUPTED = 130  # Ctrl-C, as shells report it
