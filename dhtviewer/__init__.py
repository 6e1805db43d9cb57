"""dhtviewer: a BitTorrent Mainline DHT node with a live desktop view of what it does."""

__version__ = "0.1.0"
