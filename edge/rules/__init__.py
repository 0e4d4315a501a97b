"""Safety rules: persistence, cooldown and the start / update / end life of events."""

from sitewatch.edge.rules.engine import RuleEngine

__all__ = ["RuleEngine"]
