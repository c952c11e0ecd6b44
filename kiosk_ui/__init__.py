"""The full-screen pygame client a student touches at a site. Built in the kiosk issue."""
