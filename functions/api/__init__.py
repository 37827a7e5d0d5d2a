"""The status API function (handler: `functions.api.app.handler`)."""

from functions.api import lazy_packages

lazy_packages.install()  # before anything imports Powertools' event handler (cold start)
