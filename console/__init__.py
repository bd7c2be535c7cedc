"""The web console for finance staff (``hourbridge console``): overview, mappings, preview and
approve, runs, connections. Server-rendered (Starlette, Jinja2, vendored htmx)."""
