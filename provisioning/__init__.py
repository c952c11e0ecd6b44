"""The site staff's tool to turn a fresh device into a kiosk. Built in the kiosk issue."""
