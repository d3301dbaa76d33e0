#!/usr/bin/python3
"""fake_etcd.py PORT MODE: a hostile "etcd" on 127.0.0.1:PORT for
test_catalogue_hostile.sh, answering the catalogue agent's JSON gateway
requests with what a real etcd never sends but a compromised member, or
anyone on the path of plain http, can:
  null-token  /v3/auth/authenticate -> {"token": null}
  null-type   /v3/kv/range -> an empty range; /v3/watch -> a stream whose
              event has "type": null (its record is garbage: the key process
              must refuse it, after the agent passed it on)
Every request is appended to PORT.requests (one path per line)."""
import base64
import http.server
import json
import sys
import time

port, mode = int(sys.argv[1]), sys.argv[2]
HDR = {"cluster_id": "1", "member_id": "2", "revision": "5", "raft_term": "2"}


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *a):
        pass

    def reply(self, obj, code=200):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length', 0)))
        with open(f'{port}.requests', 'a') as f:
            f.write(self.path + '\n')
        if self.path == '/v3/auth/authenticate':
            return self.reply({"header": HDR, "token": None})
        if mode == 'null-token':
            return self.reply({"error": "etcdserver: invalid auth token", "code": 16}, 401)
        if self.path == '/v3/kv/range':
            return self.reply({"header": HDR})
        if self.path == '/v3/watch':
            self.send_response(200)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Connection', 'close')
            self.end_headers()
            kv = {"key": base64.b64encode(b'/kst/keys/hostile').decode(), "mod_revision": "6",
                  "value": base64.b64encode(b'not a record').decode()}
            for m in ({"result": {"header": HDR, "created": True}},
                      {"result": {"header": HDR, "events": [{"type": None, "kv": kv}]}}):
                self.wfile.write(json.dumps(m).encode() + b'\n')
                self.wfile.flush()
            time.sleep(1)
            self.close_connection = True
            return
        self.reply({"error": "not found", "code": 5}, 404)


http.server.ThreadingHTTPServer(('127.0.0.1', port), H).serve_forever()
