"""What the gateway process keeps out besides `wee5_kit.lean`'s list: rich and pygments
(3.6 MB of resident memory), which structlog (pretty tracebacks for consoles) and httpx (its
command line) import when installed. The gateway draws neither; xp's tasks draw their
progress bars with rich, so the kit's list cannot hold them. Imported first by
`python -m wee5_gateway`."""

from wee5_kit.lean import keep_out

keep_out("rich", "pygments")
