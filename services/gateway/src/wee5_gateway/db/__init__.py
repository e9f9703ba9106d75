"""The gateway's own tables (schema `gateway`), every SQL statement, and its migrations."""
