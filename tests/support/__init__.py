"""Helpers shared by tests: real-network harnesses and subprocess scripts."""
