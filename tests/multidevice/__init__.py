"""Multi-device checks, run in a subprocess with 8 simulated CPU devices."""
