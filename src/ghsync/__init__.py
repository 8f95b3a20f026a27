"""ghsync: two-way sync between a platform's projects and GitHub repositories, through a GitHub App."""

__version__ = "0.1.0"
