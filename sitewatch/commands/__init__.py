"""sitewatch subcommands, one module each (registered in sitewatch/cli.py)."""
