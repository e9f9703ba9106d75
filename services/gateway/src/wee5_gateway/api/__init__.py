"""The bounded contexts the gateway fronts, one folder each."""
