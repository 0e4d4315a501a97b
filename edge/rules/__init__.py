"""Safety rules: persistence, cooldown and the start / update / end life of events."""

from edge.rules.engine import RuleEngine

__all__ = ["RuleEngine"]
