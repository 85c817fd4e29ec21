"""Generated from proto/topom. Do not edit: run scripts/gen-clients."""
