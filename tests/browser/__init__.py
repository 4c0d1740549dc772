"""Browser tests: the web explorer in a real Chromium against a real Quipu."""
