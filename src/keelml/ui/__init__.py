"""``keel ui``: a local, server-rendered dashboard over a workspace (a front end).

Pages are plain HTML built on the server; charts use the plotly.js file that ships inside the
``plotly`` package, served from this app, so nothing is fetched from a CDN.
"""

from keelml.ui.app import create_app

__all__ = ["create_app"]
