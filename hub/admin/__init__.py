"""The pages of admins, coordinators and site staff. Owns no table: it decides who may change
what, and the owners (accounts, catalog, matching) make the change."""
