"""The hub's HTTP API for programs (kiosks, tools, monitoring), described for them: the OpenAPI
document in `openapi.py`, served at `GET /api/openapi.json`."""
