"""The Content-Security-Policy header: django-csp's, with the page's own websocket origin."""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware (settings.CONTENT_SECURITY_POLICY, per-response nonces), whose
    connect-src also names this host's websocket origin: CSP Level 3 counts ws(s):// of the
    page's host as 'self', older browsers (Safari before 15.4) do not, and the battle, the
    leaderboard and the admin's progress pages stream over websockets."""

    def get_policy_parts(
        self,
        request: HttpRequest,
        response: HttpResponseBase,
        report_only: bool = False,
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()  # checked against ALLOWED_HOSTS: no spaces or ';'
        except DisallowedHost:
            return parts
        # Behind a TLS proxy without ARENA_PROXY_SSL_HEADER the page may be https while the
        # request looks like http: name both schemes then.
        origins = [f"wss://{host}"] if request.is_secure() else [f"ws://{host}", f"wss://{host}"]
        update = dict(parts.update or {})
        update["connect-src"] = [*(update.get("connect-src") or []), *origins]
        parts.update = update
        return parts
