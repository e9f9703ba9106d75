"""HTTP routes, one Controller per area."""
