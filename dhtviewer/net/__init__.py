"""The asyncio shell around the sans-IO core: UDP transport, the DhtSession API, state persistence
and the local testnet.

Kept import-light on purpose (the GUI imports it early); import
the submodules directly: ``from dhtviewer.net.session import DhtSession``.
"""
