#!/usr/bin/env python3
"""Minimal WebSocket client (RFC 6455, standard library only) for the registry
integration tests: connects to ws://HOST:PORT/PATH with a bearer token, prints
every text message on its own line (flushed), exits after --count messages, on
close (printing "closed by the server" when the server sent a close frame), or
after --timeout seconds. Exit 0 on a clean run, 1 if refused."""
import argparse, base64, os, socket, ssl, struct, sys, time

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host"); ap.add_argument("port", type=int); ap.add_argument("path")
    ap.add_argument("--token", default=None); ap.add_argument("--query-token", action="store_true")
    ap.add_argument("--count", type=int, default=0); ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--tls", action="store_true")
    a = ap.parse_args()
    deadline = time.time() + a.timeout
    sock = socket.create_connection((a.host, a.port), timeout=a.timeout)
    if a.tls:
        ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname=a.host)
    key = base64.b64encode(os.urandom(16)).decode()
    path = a.path
    headers = ""
    if a.token and a.query_token:
        path += "?token=" + a.token
    elif a.token:
        headers = "Authorization: Bearer %s\r\n" % a.token
    sock.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
                  % (path, a.host, a.port, key, headers)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            print("refused: connection closed", file=sys.stderr); return 1
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        print("refused: " + head.split(b"\r\n")[0].decode(), file=sys.stderr); return 1
    got = 0
    def need(n):
        nonlocal buf
        while len(buf) < n:
            left = deadline - time.time()
            if left <= 0: raise TimeoutError
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk: raise EOFError
            buf += chunk
        out, buf = buf[:n], buf[n:]
        return out
    try:
        while a.count == 0 or got < a.count:
            b0, b1 = need(2)
            op, n = b0 & 15, b1 & 127
            if n == 126: n = struct.unpack(">H", need(2))[0]
            elif n == 127: n = struct.unpack(">Q", need(8))[0]
            payload = need(n)
            if op == 8:
                print("closed by the server", flush=True); break
            if op == 9:   # ping -> pong (masked, as a client must)
                mask = os.urandom(4)
                sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + mask + bytes(p ^ mask[i % 4] for i, p in enumerate(payload)))
                continue
            if op == 1:
                print(payload.decode(), flush=True); got += 1
    except (TimeoutError, socket.timeout, EOFError, ConnectionError):
        pass
    return 0

sys.exit(main())
