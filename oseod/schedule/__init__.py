"""Periodic tasks (LoopingCall), run by one daemon at a time."""
