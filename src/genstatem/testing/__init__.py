"""Tools for testing actors and protocols: virtual time, and more to come."""

from ._virtual_time import VirtualTimeEventLoop as VirtualTimeEventLoop

__all__ = ["VirtualTimeEventLoop"]
