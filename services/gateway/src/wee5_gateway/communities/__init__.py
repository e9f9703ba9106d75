"""Who may do what in a community (roles), its API keys, its audit log, and the generic
activity intake that API keys feed."""
