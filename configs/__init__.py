"""Example and demo site configs shipped with sitewatch (``sitewatch.resources.config_file``)."""
