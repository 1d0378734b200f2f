"""The data contract: its rules, the pure validator, the error envelope, poison isolation."""
