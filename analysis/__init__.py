"""Fleet-reliability analytics for DoorCounter devices."""

__version__ = "0.1.0"
