"""A TLS front for the real MLflow server, with a self-signed certificate made
for the test (openssl), so TLS verification can be tested without any
network beyond loopback."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit


def make_cert(dirpath: Path) -> tuple[Path, Path]:
    key, cert = dirpath / "key.pem", dirpath / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return key, cert


class TlsProxy:
    """Terminates TLS on a loopback port and pipes bytes to the upstream."""

    def __init__(self, upstream: str, key: Path, cert: Path):
        u = urlsplit(upstream)
        self.up = (u.hostname, u.port)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"https://127.0.0.1:{self.sock.getsockname()[1]}"
        self.handshake_failures = 0
        self.running = True
        threading.Thread(target=self._serve, daemon=True).start()

    def _pipe(self, a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _handle(self, raw):
        try:
            tls = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshake_failures += 1  # the client refused our certificate
            raw.close()
            return
        up = socket.create_connection(self.up)
        threading.Thread(target=self._pipe, args=(tls, up), daemon=True).start()
        self._pipe(up, tls)

    def _serve(self):
        while self.running:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(raw,), daemon=True).start()

    def close(self):
        self.running = False
        self.sock.close()
