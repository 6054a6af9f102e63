"""Jobs, schedules, sensors per asset group, and the Definitions root (``jobs.definitions``)."""
