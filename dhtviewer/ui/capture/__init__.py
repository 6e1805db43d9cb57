"""The packet capture behind the packet log: every datagram the node sent or received, numbered,
paired query with reply, kept in a bounded on-disk ring (SQLite) and searched with a display
filter over all of it.

- ``records``: one captured datagram (``Packet``) made from the core's events, and ``Pairer``,
  which matches each reply to its query (transaction id + address) and gives the RTT.
- ``filter``: the display filter language, compiled to one SQL expression.
- ``store``: ``PacketCapture``, the ring itself: recent rows in memory, everything in a SQLite
  file written in batches by a thread of its own, filter scans and per-address statistics
  run there too.
- ``dissect``: the detail pane's text (decoded message, hex and ASCII bytes).
"""
