"""Traffic log: one redacted record per request in and per call out."""
