"""The web server: HTTP API, Server-Sent Events and the HTML page (needs the ``web`` extra)."""

from .app import create_app as create_app

__all__ = ["create_app"]
