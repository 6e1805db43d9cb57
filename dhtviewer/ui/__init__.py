"""The desktop application: Qt widgets on top of a DhtSession, with asyncio run by qasync on the
Qt main thread (one thread, no locks)."""
