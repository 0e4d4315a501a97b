"""The box <-> server contract: what a box sends (events, heartbeats) and what it pulls
(the worker register feed). Both sides import it; neither imports the other."""
