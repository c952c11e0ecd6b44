"""The helpdesk: tickets about problems (from any page or a kiosk) and the room reports, worked by
admins, site staff (their site's) and coordinators (their organisation's reports)."""
