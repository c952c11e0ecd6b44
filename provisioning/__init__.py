"""`lektiecafe provision`: the site staff's tool that turns a fresh Raspberry Pi OS or Debian box
into a kiosk (install), checks it (check), moves it to another site (reset) and to a new version
(update). Standard library only, plus `appliance` where it talks to the hub: it must run on a
device before anything else is installed."""
