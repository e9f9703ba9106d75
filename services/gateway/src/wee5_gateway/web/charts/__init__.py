"""Charts drawn on the server as inline SVG (no chart script): they show without JavaScript
and tests can read them. One module per kind of chart."""
