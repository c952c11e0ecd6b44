"""What students can ask about: subjects, grades and languages. Owns the tables subjects and
languages."""
