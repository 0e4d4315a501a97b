"""sitewatch: a computer-vision safety monitor for construction sites."""

__version__ = "0.1.0"
