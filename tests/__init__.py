"""Tests: the real app factory against fake peers on 127.0.0.1."""
