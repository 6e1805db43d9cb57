"""The asyncio shell around the sans-IO core: UDP transport, the DhtSession API, state persistence
and the local testnet.

Kept import-light on purpose (the GUI's input fields import ``dhtviewer.net.addresses``); import
the submodules directly: ``from dhtviewer.net.session import DhtSession``.
"""
