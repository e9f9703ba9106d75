"""Points for actions (admins, bots with `xp:admin`) and member imports (owners)."""
