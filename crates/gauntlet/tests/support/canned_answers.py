"""A service that answers each question with the answer it was given for it:
POST /answer {"question": ...} -> {"answer": ...}. For comparing scorers on fixed answers.

    python3 canned_answers.py PORT answers.json
"""
import http.server
import json
import sys

answers = json.load(open(sys.argv[2]))


class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.reply(200, {"ok": True})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        question = json.loads(self.rfile.read(length))["question"]
        self.reply(200, {"answer": answers.get(question, "")})

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Answer).serve_forever()
