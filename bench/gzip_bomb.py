"""Peak RSS of the registry client refusing a gzip bomb (a small body that inflates hugely).

    python bench/gzip_bomb.py [--inflates-to MIB] [--cap MIB]

A local server (its own process, so its memory is not counted) answers one GET with
``--inflates-to`` MiB of spaces, gzip-compressed; the client asks it through
:func:`monitor.sources.http.bounded_get` with ``limits.max_decompressed_bytes`` = ``--cap`` MiB and
prints its peak RSS (``ru_maxrss``) before and after, and the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import zlib
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MIB = 2**20


def bomb(size: int) -> bytes:
    """``size`` spaces, gzip-compressed a MiB at a time (the bomb is built without holding it inflated)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    block, out = b" " * MIB, []
    for _ in range(size // MIB):
        out.append(z.compress(block))
    out.append(z.flush())
    return b"".join(out)


def serve(size: int) -> None:
    body = bomb(size)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], len(body), flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inflates-to", type=int, default=1024, help="MiB the body inflates to")
    parser.add_argument("--cap", type=int, default=256, help="limits.max_decompressed_bytes, MiB")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    import httpx

    from monitor.limits import Limits
    from monitor.sources.http import TooLarge, bounded_get

    serving = [sys.executable, __file__, "--serve", str(args.inflates_to * MIB)]
    server = subprocess.Popen(serving, stdout=subprocess.PIPE)
    try:
        port, size = map(int, server.stdout.readline().split())
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        limits = Limits(max_decompressed_bytes=args.cap * MIB)
        with httpx.Client() as http:
            try:
                bounded_get(http, f"http://127.0.0.1:{port}/", None, 120, limits)
                said = "not refused"
            except TooLarge as exc:
                said = f"refused: {exc}"
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        server.kill()
        server.wait()
    print(f"gzip bomb: {size:,} bytes inflating to {args.inflates_to} MiB, cap {args.cap} MiB; {said}")
    print(f"peak RSS: {before:.1f} MB before the request, {after:.1f} MB after; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
