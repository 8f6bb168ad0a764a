"""oseod: an OGC OSEO 1.0 ordering server in one Twisted process."""

__version__ = "0.1.0"
