"""moto's AWS server for offline deploys, with two compatibility shims.

They fill gaps where moto is stricter than AWS, so `chalice deploy` can run
against the emulator; nothing else is changed:
- S3 treats bucket-notification filter rule names case-insensitively and Chalice
  sends "Prefix"/"Suffix"; moto accepts only lower case. The shim lowers them.
- moto imports only OpenAPI 3 REST APIs and Chalice sends Swagger 2. The shim
  restates the document's paths, methods and integrations as OpenAPI 3, so the
  deploy goes on; the authorizers and the rest of the document are checked in
  `chalice package --pkg-format terraform` output instead.
"""

from __future__ import annotations

import argparse
import io
import json
import re
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

_RULE = re.compile(rb"<Name>(Prefix|Suffix)</Name>")


def _body(environ: dict) -> bytes:
    return environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))


def _replace_body(environ: dict, body: bytes) -> None:
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))


def _as_openapi3(swagger: dict) -> dict:
    methods = ("get", "put", "post", "delete", "patch", "head", "options")
    paths = {
        route: {
            m: {
                "responses": {"200": {"description": "OK"}},
                "x-amazon-apigateway-integration": doc.get("x-amazon-apigateway-integration", {}),
            }
            for m, doc in item.items()
            if m in methods
        }
        for route, item in swagger.get("paths", {}).items()
    }
    info = {"description": "", **swagger.get("info", {})}
    return {"openapi": "3.0.1", "info": info, "paths": paths}


def application() -> Any:
    moto = DomainDispatcherApplication(create_backend_app)

    def shim(environ: dict, start_response: Any) -> Any:
        method, query = environ.get("REQUEST_METHOD"), environ.get("QUERY_STRING", "")
        path = environ.get("PATH_INFO", "")
        if method == "PUT" and "notification" in query:
            lowered = _RULE.sub(
                lambda m: b"<Name>" + m.group(1).lower() + b"</Name>", _body(environ)
            )
            _replace_body(environ, lowered)
        elif path.startswith("/restapis") and "mode=" in query:
            document = json.loads(_body(environ) or b"{}")
            if "swagger" in document:
                _replace_body(environ, json.dumps(_as_openapi3(document)).encode())
        return moto(environ, start_response)

    return shim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    make_server("127.0.0.1", args.port, application(), threaded=True).serve_forever()


if __name__ == "__main__":
    main()
