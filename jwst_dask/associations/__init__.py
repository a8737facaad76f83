"""associations."""
