"""The training recipe: data, detector, helmet colour, export, int8.

Run each as ``python -m scripts.train.NAME`` from the checkout's root.
"""
