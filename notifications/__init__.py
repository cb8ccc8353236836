"""Notifications: per-workspace rules that tell people when jobs end or things go wrong."""
