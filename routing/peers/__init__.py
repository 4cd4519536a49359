"""Peers: the one outbound HTTP boundary and everything that reads what a partner answers."""
