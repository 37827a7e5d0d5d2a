"""cardstatus: card-delivery status service (shared code of the Lambda layer and the CLI)."""

__version__ = "0.1.0"
