"""The security console: held-message review, dashboard, audit trail, accounts.

``gateway.console.routes.console_routes`` gives the routes ``gateway.web``
mounts; everything else here serves them.
"""
