"""The resource groups (generated from the OpenAPI document by client/scripts/generate.py)."""
