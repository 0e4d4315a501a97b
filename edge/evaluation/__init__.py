"""Evaluation of replayed video against hand-labelled ground truth."""
