"""Server-rendered pages and images of the gateway."""
