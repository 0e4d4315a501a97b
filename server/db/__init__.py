"""Database models and session handling."""
