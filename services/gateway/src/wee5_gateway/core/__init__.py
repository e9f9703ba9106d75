"""Cross-cutting code of the gateway: errors, OpenAPI, security, access, clients, audit,
dependencies, protection and the entitlements gate."""
