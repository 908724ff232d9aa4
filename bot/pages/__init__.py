"""Pages the app serves besides Chat events: trend charts (PNG) and the status page."""
