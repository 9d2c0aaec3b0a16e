"""requests' ``Session`` for the SDK clients' transport, preparing each request in one step.

azure-core's ``RequestsTransport`` calls ``Session.request`` for every attempt. requests' general path builds
a ``Request``, merges the session's cookies, headers, parameters, hooks and authentication into it (each merge
checking its values against typing protocols), then merges the environment's settings: about a third of
requests' own CPU time per request (0.1 ms of 0.3 ms here), spent on what the SDK's requests never carry, as
the SDK's policies set the headers, sign and follow redirects themselves. :class:`PreparedSession` takes
requests' own steps for what they do carry (method, URL, headers, body: :func:`prepared`) and hands the result
to ``Session.send``, as requests would. A request with anything more (query parameters, files, JSON, cookies,
authentication, hooks, redirects to follow), or a session given any of those or told to read the environment,
goes requests' general way.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import requests
from requests.models import PreparedRequest, Response
from requests.structures import CaseInsensitiveDict


def prepared(
    defaults: Mapping[str, str | bytes], method: str, url: str, headers: Mapping[str, Any] | None, data: Any
) -> PreparedRequest:
    """The request ``Session.request`` prepares from these, with ``defaults`` the session's headers (a header
    given None is left out) and no cookie, parameter, file, authentication or hook of either."""
    merged: CaseInsensitiveDict[str | bytes] = CaseInsensitiveDict(defaults)
    for name, value in (headers or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    request = PreparedRequest()
    # PreparedRequest.prepare's steps, in its order, without the cookie jar it would make
    request.prepare_method(method.upper())
    request.prepare_url(url, None)
    request.prepare_headers(merged)
    request.prepare_body(data or {}, None, None)
    request.prepare_auth(None, url)  # credentials in the URL, as requests takes them
    return request


def settings(
    session: requests.Session,
    proxies: MutableMapping[str, str] | None,
    stream: bool | None,
    verify: bool | str | None,
    cert: str | tuple[str, str] | None,
) -> dict[str, Any]:
    """What ``Session.merge_environment_settings`` gives a session that does not read the environment: the
    request's settings over the session's, a proxy given None left out."""
    chosen = dict(session.proxies)
    for scheme, proxy in (proxies or {}).items():
        if proxy is None:
            chosen.pop(scheme, None)
        else:
            chosen[scheme] = proxy
    return {
        "proxies": chosen,
        "stream": session.stream if stream is None else stream,
        "verify": session.verify if verify is None else verify,
        "cert": session.cert if cert is None else cert,
    }


class PreparedSession(requests.Session):
    """A ``requests.Session`` whose :meth:`request` prepares the SDK's requests in one step (see the module's
    docstring); what it sends and how it sends it are requests' own."""

    def request(  # type: ignore[override]  # requests' own signature, its untyped values kept
        self,
        method: str,
        url: str,
        params: Any = None,
        data: Any = None,
        headers: Any = None,
        cookies: Any = None,
        files: Any = None,
        auth: Any = None,
        timeout: Any = None,
        allow_redirects: bool = True,
        proxies: Any = None,
        hooks: Any = None,
        stream: bool | None = None,
        verify: Any = None,
        cert: Any = None,
        json: Any = None,
    ) -> Response:
        general = (
            params
            or cookies
            or files
            or auth
            or hooks
            or json is not None
            or allow_redirects
            or not isinstance(url, str)
            or self.trust_env
            or self.params
            or self.auth
            or len(self.cookies)
            or any(self.hooks.values())
        )
        if general:
            return super().request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                cookies=cookies,
                files=files,
                auth=auth,
                timeout=timeout,
                allow_redirects=allow_redirects,
                proxies=proxies,
                hooks=hooks,
                stream=stream,
                verify=verify,
                cert=cert,
                json=json,
            )
        request = prepared(self.headers, method, url, headers, data)
        return self.send(
            request,
            timeout=timeout,
            allow_redirects=False,
            **settings(self, proxies, stream, verify, cert),
        )
