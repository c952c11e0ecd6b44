"""Accounts: sites, partner organisations, users and their roles, login and a student's own data.
Owns the tables sites, organisations, users (with helper_subjects, helper_languages) and
login_throttles; `access` is how every other feature checks who is calling."""
