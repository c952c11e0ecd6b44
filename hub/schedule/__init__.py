"""The café's opening hours and closed days, and the shifts they make. Owns the tables
schedule_opening_hours and schedule_closed_days."""
