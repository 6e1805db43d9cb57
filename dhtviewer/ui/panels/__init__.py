"""Panels: the widgets docked in the main window, each composing models and views with the
controls that drive the controller (network, routing table, lookup, announce, traffic, packets)."""
