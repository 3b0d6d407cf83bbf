"""The run's HTTP face: the small server, the /streams routes and the live preview page."""
