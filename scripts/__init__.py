"""Training, export and benchmark scripts of a sitewatch checkout.

Run them from the checkout's root as modules, e.g. ``python -m scripts.bench.detector``;
``scripts.common`` has what they share (the checkout's folders, the shared data sets).
"""
