"""`@idempotent`: honour an `Idempotency-Key` header on a create route.

Without the header the route runs as always. With it, the first successful response is
stored (see `services.idempotency`) and a retry of the same request gets it back with
`Idempotent-Replayed: true`; the same key with another request answers 422.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, make_response, request

from portal.services import idempotency
from portal.services.errors import PermissionDenied
from portal.web.context import portal, principal
from portal.web.security import csrf_valid

HEADER = "Idempotency-Key"
CHUNK = 1 << 20


def _file_digest(stream: Any) -> bytes:
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
    stream.seek(0)  # the route saves the file afterwards
    return digest.digest()


def _body_parts() -> Iterator[bytes]:
    """What identifies the body: JSON as sent; for uploads the fields and each file's hash.

    Uploads are hashed from Werkzeug's spooled files, so a large upload is not held in
    memory to compare it.
    """
    if request.mimetype == "multipart/form-data":
        for name, value in sorted(request.form.items(multi=True)):
            yield f"field:{name}={value}".encode()
        for name, upload in sorted(
            request.files.items(multi=True), key=lambda item: (item[0], item[1].filename or "")
        ):
            yield f"file:{name}={upload.filename}".encode() + _file_digest(upload.stream)
    else:
        yield request.get_data(cache=True)


def idempotent(
    view: Callable[..., Any] | None = None, *, check: Callable[..., None] | None = None
) -> Any:
    """Wrap a POST view that creates something; see the module docstring.

    `check(**view_args)`, if given, runs before the body is read (and hashed), so a caller
    who may not use the route is refused before their upload is received; it is skipped
    when the key was used before (the answer is replayed, or 422 for another request).
    """
    if view is None:
        return functools.partial(idempotent, check=check)

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        raw_key = request.headers.get(HEADER)
        if raw_key is None:
            return view(*args, **kwargs)
        key = idempotency.check_key(raw_key)
        # Checked before a stored response can be replayed, as the route itself would.
        if not csrf_valid(request.headers.get("X-CSRF-Token")):
            raise PermissionDenied("missing or wrong X-CSRF-Token header")
        p = portal()
        user_id = principal().user_id
        if check is not None:
            with p.db.session() as s:
                known = idempotency.seen(s, user_id, key)
            # A key already used passed the check then; the check may fail now because of
            # that very request (a correction makes a newer version), so it is not redone.
            if not known:
                check(*args, **kwargs)
        if request.mimetype == "multipart/form-data":
            # Uploads are parsed here, before the route sets its own limit: apply it now.
            request.max_content_length = p.settings.max_upload_mb * 1024 * 1024
        line = f"{request.method} {request.path}"
        print_ = idempotency.fingerprint(
            request.method, request.path, request.query_string, _body_parts()
        )
        with p.db.session() as s:
            stored = idempotency.begin(s, user_id, key, line, print_)
        if stored is not None:
            replay = Response(stored.body, status=stored.status, mimetype="application/json")
            replay.headers["Idempotent-Replayed"] = "true"
            return replay
        try:
            response = make_response(view(*args, **kwargs))
        except BaseException:
            with p.db.session() as s:
                idempotency.abandon(s, user_id, key)
            raise
        with p.db.session() as s:
            if 200 <= response.status_code < 300 and response.is_json:
                idempotency.finish(
                    s, user_id, key, response.status_code, response.get_data(as_text=True)
                )
            else:
                idempotency.abandon(s, user_id, key)
        return response

    return wrapper
