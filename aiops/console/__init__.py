"""The web console under ``/ui/``: server-rendered pages over the daemon's API backend (see docs/console.md).

:mod:`aiops.console.views` has the routes, :mod:`aiops.console.auth` who may read and change things,
:mod:`aiops.console.evidence` the incident plots; templates and static files ship inside this package.
"""
