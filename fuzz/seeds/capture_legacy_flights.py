#!/usr/bin/env python3
"""Capture real server flights for the `legacy_parser` fuzz seeds.

Starts `openssl s_server` on 127.0.0.1 (loopback only), sends a TLS 1.0-1.2 ClientHello shaped
like certprobe's legacy one (record version 3.1, client_version 3.3, no supported_versions), and
stores the raw bytes the server answers with, up to ServerHelloDone or an alert:

  tls10-rsa-chain.bin        openssl s_server -tls1, RSA-2048 leaf + CA (ServerKeyExchange too)
  tls12-ecdsa-certreq.bin    openssl s_server -tls1_2 -Verify 1, ECDSA leaf (CertificateRequest)
  tls10-split-records.bin    the TLS 1.0 flight's handshake re-cut into 100-byte records and
                             with a HelloRequest in front, as SChannel-like stacks send it
  tls13-only-alert.bin       openssl s_server -tls1_3: the fatal alert a TLS 1.3-only server sends

Usage: fuzz/seeds/capture_legacy_flights.py [OUT_DIR]   (default: fuzz/seeds/legacy_parser)
Needs: openssl (3.x) on PATH. Certificates are generated in a temporary directory.
"""

import os
import socket
import struct
import subprocess
import sys
import tempfile
import time


def run(*args, cwd):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(d):
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-subj", "/CN=Seed Legacy CA", "-days", "30",
        "-addext", "basicConstraints=critical,CA:TRUE", cwd=d)
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa.key", "-out", "rsa.csr",
        "-subj", "/CN=lync.contoso.com", cwd=d)
    with open(os.path.join(d, "leaf.ext"), "w") as f:
        f.write("subjectAltName=DNS:lync.contoso.com,DNS:sip.contoso.com\n"
                "extendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", "rsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "rsa.pem", "-days", "30", "-sha1", "-extfile", "leaf.ext", cwd=d)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "ec.key", "-out", "ec.pem", "-subj", "/CN=edge.contoso.com",
        "-days", "30", "-addext", "subjectAltName=DNS:edge.contoso.com", cwd=d)


def client_hello(sni):
    suites = [0xC02F, 0xC02B, 0xC013, 0xC009, 0xC014, 0xC00A, 0x009C, 0x002F, 0x0035, 0x000A]
    ext = b""
    name = sni.encode()
    server_name = b"\x00" + struct.pack(">H", len(name)) + name
    ext += struct.pack(">HH", 0x0000, len(server_name) + 2) + struct.pack(">H", len(server_name)) + server_name
    groups = struct.pack(">HHH", 0x001D, 0x0017, 0x0018)
    ext += struct.pack(">HHH", 0x000A, len(groups) + 2, len(groups)) + groups
    ext += struct.pack(">HHB", 0x000B, 2, 1) + b"\x00"
    algs = struct.pack(">HHHHHH", 0x0403, 0x0804, 0x0401, 0x0503, 0x0201, 0x0203)
    ext += struct.pack(">HHH", 0x000D, len(algs) + 2, len(algs)) + algs
    ext += struct.pack(">HHB", 0xFF01, 1, 0)
    body = b"\x03\x03" + os.urandom(32) + b"\x00"
    body += struct.pack(">H", 2 * len(suites)) + b"".join(struct.pack(">H", s) for s in suites)
    body += b"\x01\x00" + struct.pack(">H", len(ext)) + ext
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def flight_done(buf):
    """True once the bytes hold an alert record or a ServerHelloDone handshake message."""
    hs = b""
    rest = buf
    while len(rest) >= 5:
        ctype, length = rest[0], struct.unpack(">H", rest[3:5])[0]
        if len(rest) < 5 + length:
            break
        if ctype == 21:
            return True
        if ctype == 22:
            hs += rest[5:5 + length]
        rest = rest[5 + length:]
    while len(hs) >= 4:
        mlen = int.from_bytes(hs[1:4], "big")
        if hs[0] == 14:
            return True
        hs = hs[4 + mlen:]
    return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def capture(d, server_args, sni):
    port = free_port()
    proc = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-naccept", "1", "-quiet",
         *server_args],
        cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with sock:
            sock.sendall(client_hello(sni))
            buf = b""
            end = time.monotonic() + 5
            while not flight_done(buf) and time.monotonic() < end:
                try:
                    chunk = sock.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                buf += chunk
        if not flight_done(buf):
            raise SystemExit(f"no complete flight from openssl s_server {' '.join(server_args)}")
        return buf
    finally:
        proc.kill()
        proc.wait()


def resplit(flight, size):
    """The same handshake bytes, behind a HelloRequest, re-cut into records of `size` bytes."""
    hs = b"\x00\x00\x00\x00"
    rest = flight
    while len(rest) >= 5:
        length = struct.unpack(">H", rest[3:5])[0]
        if rest[0] == 22:
            hs += rest[5:5 + length]
        rest = rest[5 + length:]
    out = b""
    for i in range(0, len(hs), size):
        part = hs[i:i + size]
        out += b"\x16\x03\x01" + struct.pack(">H", len(part)) + part
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "legacy_parser")
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        make_pki(d)
        legacy = ["-cipher", "DEFAULT@SECLEVEL=0"]
        seeds = {
            "tls10-rsa-chain.bin": capture(
                d, ["-tls1", *legacy, "-cert", "rsa.pem", "-key", "rsa.key",
                    "-cert_chain", "ca.pem"], "lync.contoso.com"),
            "tls12-ecdsa-certreq.bin": capture(
                d, ["-tls1_2", "-cert", "ec.pem", "-key", "ec.key", "-Verify", "1",
                    "-CAfile", "ca.pem"], "edge.contoso.com"),
            "tls13-only-alert.bin": capture(
                d, ["-tls1_3", "-cert", "ec.pem", "-key", "ec.key"], "edge.contoso.com"),
        }
        seeds["tls10-split-records.bin"] = resplit(seeds["tls10-rsa-chain.bin"], 100)
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
