"""Dataset-specific generators and schemas."""
