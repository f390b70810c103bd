"""The daemon's HTTP API (`daemon: {http: ...}` or `syncdash daemon --http`): Starlette served by uvicorn in a
thread of its own. Imported only when the API is on, so the CLI never pays for it."""
