"""Small reusable constructs; each builds its parts in short private methods."""
