#!/usr/bin/env python3
"""A git smart-HTTP server for tests: `git http-backend` behind HTTP Basic auth.

Serves every repository under --root on 127.0.0.1 (a free port unless --port is given) and
prints `PORT <n>` on stdout once it listens. Requests must carry Basic credentials whose
password equals the content of --token-file (read once, stripped) and, with --user, that
user name; anything else gets 401 like a real forge. Standard library only.
"""

import argparse
import base64
import hmac
import http.server
import os
import subprocess
import sys
import urllib.parse


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True, help="directory holding bare repositories")
    parser.add_argument("--token-file", required=True, help="file whose content is the password")
    parser.add_argument("--user", help="required user name (any when omitted)")
    parser.add_argument("--port", type=int, default=0)
    return parser.parse_args()


class GitHandler(http.server.BaseHTTPRequestHandler):
    # Set on the class by main().
    root = ""
    token = b""
    user = None

    def do_GET(self):
        self.serve()

    def do_POST(self):
        self.serve()

    def log_message(self, fmt, *args):
        sys.stderr.write("git_http_server: " + (fmt % args) + "\n")

    def serve(self):
        user = self.authenticated_user()
        if user is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.read_body()
        status, headers, payload = self.run_backend(user, body)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def authenticated_user(self):
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(password.encode(), self.token):
            return None
        if self.user is not None and user != self.user:
            return None
        return user

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def run_backend(self, user, body):
        url = urllib.parse.urlsplit(self.path)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": self.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": urllib.parse.unquote(url.path),
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user,
            "REMOTE_ADDR": self.client_address[0],
        }
        for header, variable in (
            ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
            ("Git-Protocol", "HTTP_GIT_PROTOCOL"),
        ):
            if header in self.headers:
                env[variable] = self.headers[header]
        result = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60
        )
        if result.stderr:
            sys.stderr.write(result.stderr.decode(errors="replace"))
        return parse_cgi(result.stdout)


def parse_cgi(output):
    """Splits CGI output into (status, headers, body)."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = output.partition(separator)
        if found:
            break
    else:
        return 500, [], b"malformed CGI output"
    status = 200
    headers = []
    for line in head.decode(errors="replace").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers.append((name.strip(), value.strip()))
    return status, headers, body


def main():
    args = parse_args()
    with open(args.token_file, "rb") as handle:
        GitHandler.token = handle.read().strip()
    GitHandler.root = os.path.abspath(args.root)
    GitHandler.user = args.user
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), GitHandler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
