"""Render briefs (HTML, PDF, Markdown, JSON) from templates/."""
