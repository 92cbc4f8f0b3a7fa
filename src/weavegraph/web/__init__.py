"""The web server: HTTP API, Server-Sent Events and the HTML page (needs the ``web`` extra)."""

from ._serverlog import SERVER_LOGGER as SERVER_LOGGER
from ._serverlog import show_server_log as show_server_log
from .app import create_app as create_app

__all__ = ["SERVER_LOGGER", "create_app", "show_server_log"]
