"""relief-audit reading GET /ledger/export over HTTP (a stand-in server with the same route)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from typer.testing import CliRunner

from services.ledger.audit import sample
from services.ledger.audit.cli import app

EXPORT = b"\n".join(sample.export(sample.World(households=40).deliveries(reversal_every=7), sample.signing_key(), 16))


class Ledger(BaseHTTPRequestHandler):
    body = EXPORT

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path != "/ledger/export":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        self.wfile.write(self.body + b"\n")

    def log_message(self, *args):
        pass


def test_verify_reads_the_export_over_http():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ledger)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        result = CliRunner().invoke(app, ["verify", "--source", base, "--no-progress"])
        assert result.exit_code == 0 and "full proof" in result.output, result.output
        Ledger.body = EXPORT.replace(b'"cash_vnd":500000', b'"cash_vnd":500001', 1)
        result = CliRunner().invoke(app, ["verify", "--source", f"{base}/ledger/export", "--no-progress"])
        assert result.exit_code == 1 and result.output.startswith("FAIL seq=1 rule=leaf_hash"), result.output
        result = CliRunner().invoke(app, ["verify", "--source", f"{base}/nothing/ledger/export", "--no-progress"])
        assert result.exit_code == 2
    finally:
        server.shutdown()
