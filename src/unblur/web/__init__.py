"""The local web page (``unblur serve``), an optional extra: ``pip install "unblur[web]"``.

* :mod:`unblur.web.app`: the FastAPI application (:func:`~unblur.web.app.create_app`);
* :mod:`unblur.web.jobs`: restoration jobs off the request thread, in a bounded queue;
* :mod:`unblur.web.votes`: blind A/B votes in SQLite, win rates with Wilson intervals;
* ``static/``: the page itself (HTML, script, style), no build step.

Nothing here is imported by ``import unblur``; :mod:`unblur.web.app` needs FastAPI.
"""
