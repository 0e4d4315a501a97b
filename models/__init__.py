"""The models sitewatch ships (package data: ``sitewatch.resources.model_file``)."""
