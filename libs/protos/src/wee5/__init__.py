"""Generated from proto/ by scripts/gen-protos.sh. Do not edit."""
