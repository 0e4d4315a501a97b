"""Business logic shared by the JSON API and the review UI.

Every function takes the SQLAlchemy ``Session`` first and keyword-only arguments after
it, checks roles and site scoping itself (:mod:`server.services.access`), writes audit
entries for human changes and commits its own unit of work. Failures raise
:class:`server.services.errors.ServiceError` subclasses whose ``status`` is the HTTP code.

Modules: ``events`` (upsert, list/filter/page, get, verdict), ``media`` (store, get),
``hazards`` (assign, evidence, accept/reject, list), ``audit``, ``dashboard``, ``export``
(CSV), ``retention``, ``admin`` (sites, users, devices, heartbeats), ``auth`` (sessions).
"""
