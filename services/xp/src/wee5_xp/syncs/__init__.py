"""Clients of third-party APIs the xp tasks read from (MEE6, Whop) and the syncs built on them."""
