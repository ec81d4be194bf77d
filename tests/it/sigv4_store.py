#!/usr/bin/env python3
"""A remote-write store of the tests' own that takes only requests signed
with AWS Signature Version 4 for `aps`, each signature recomputed with
botocore (the AWS SDK for Python's own signer, an implementation
independent of ours): 204 when it matches, 403 otherwise. Beside it, a
fake STS answering AssumeRoleWithWebIdentity with temporary keys.

    sigv4_store.py PORT REGION ACCESS_KEY SECRET_FILE WEB_TOKEN

GET /status answers {"accepted": n, "refused": n, "sts": n, "why": [...]}.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

PORT, REGION, ACCESS_KEY, SECRET_FILE, WEB_TOKEN = sys.argv[1:6]
with open(SECRET_FILE, encoding="utf-8") as f:
    KEYS = {ACCESS_KEY: (f.read().strip(), None)}
# What the fake STS hands out for the web identity.
TEMPORARY = ("ASIATEMPORARYKEY", "temporary-secret-key", "temporary-session-token")
KEYS[TEMPORARY[0]] = (TEMPORARY[1], TEMPORARY[2])
STATUS = {"accepted": 0, "refused": 0, "sts": 0, "why": []}


def verify(handler, body):
    """Why the request's signature is wrong, or None when botocore agrees."""
    auth = handler.headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "not signed with AWS4-HMAC-SHA256"
    parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    key, _date, region, service, _ = parts["Credential"].split("/")
    if key not in KEYS:
        return f"unknown access key {key}"
    if (region, service) != (REGION, "aps"):
        return f"signed for {region}/{service}"
    secret, token = KEYS[key]
    if token is not None and handler.headers.get("x-amz-security-token") != token:
        return "the session token is missing or wrong"
    signed = parts["SignedHeaders"].split(";")
    for needed in ("host", "x-amz-date"):
        if needed not in signed:
            return f"{needed} is not signed"
    headers = {name: handler.headers[name] for name in signed}
    request = AWSRequest(method="POST", url=f"http://{handler.headers['host']}{handler.path}",
                         data=body, headers=headers)
    request.context["timestamp"] = handler.headers["x-amz-date"]
    signer = SigV4Auth(Credentials(key, secret, token), "aps", REGION)
    wanted = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return None if wanted == parts["Signature"] else "the signature does not match botocore's"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, code, body=b"", kind="text/plain"):
        self.send_response(code)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(200, json.dumps(STATUS).encode(), "application/json")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path.startswith("/sts"):
            STATUS["sts"] += 1
            form = dict(p.split("=", 1) for p in body.decode().split("&"))
            if form.get("Action") != "AssumeRoleWithWebIdentity" or form.get("WebIdentityToken") != WEB_TOKEN:
                self.answer(400, b"<ErrorResponse><Error><Code>InvalidIdentityToken</Code>"
                                 b"<Message>no</Message></Error></ErrorResponse>")
                return
            xml = ("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                   f"<AccessKeyId>{TEMPORARY[0]}</AccessKeyId><SecretAccessKey>{TEMPORARY[1]}</SecretAccessKey>"
                   f"<SessionToken>{TEMPORARY[2]}</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration>"
                   "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>")
            self.answer(200, xml.encode(), "text/xml")
            return
        why = verify(self, body)
        if why is None:
            STATUS["accepted"] += 1
            self.answer(204)
        else:
            STATUS["refused"] += 1
            STATUS["why"].append(why)
            self.answer(403, why.encode())


ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler).serve_forever()
