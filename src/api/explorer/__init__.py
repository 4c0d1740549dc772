"""The web explorer at /ui: static pages and scripts served by the API process itself."""
