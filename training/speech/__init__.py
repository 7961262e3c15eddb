"""Training recipe for the bundled speech model `speech-va` (see README.md)."""
