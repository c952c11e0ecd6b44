"""Helpers' shifts: sign-up, drop and swap until a cut-off, coordinators' assignment and the
coverage of each shift per subject, grade and language. Shifts themselves come from the opening
hours (hub.schedule); this feature only records who works which one."""
