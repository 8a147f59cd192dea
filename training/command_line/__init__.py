"""The command line: the scripts' subcommands, their parsing, one-line errors and process start."""
