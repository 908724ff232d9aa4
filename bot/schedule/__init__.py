"""Scheduled posts: slots, the tick and its route, delivery, templates and their commands."""
