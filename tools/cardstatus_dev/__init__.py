"""Developer and operator tooling for cardstatus: the `cardstatus` command, the local stack,
the local API server, embedded PostgreSQL and the OpenAPI document.

Installed by `pip install -e .` next to the runtime package `cardstatus`, but never shipped
to Lambda: the code layer holds `layers/cardstatus/python/cardstatus/` only. Imports point
one way: this package uses `cardstatus` and the handlers in `functions/`; neither imports it
(`make lint` checks this with import-linter).
"""
