"""Generated from proto/topom/v1. Do not edit: run scripts/gen-clients."""
