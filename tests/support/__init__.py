"""Stand-ins for third-party providers, speaking their wire formats independently of our code."""
