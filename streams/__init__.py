"""Real-time contact-center KPI pipeline."""
