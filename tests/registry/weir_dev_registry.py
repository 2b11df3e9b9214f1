#!/usr/bin/env python3
"""weir-dev-registry: a small Confluent-compatible Schema Registry for tests and the
quickstart. In memory, one process, standard library only.

Endpoints (Confluent Schema Registry REST API v1, the subset producers, consumers
and Kafka Connect converters use):

  POST /subjects/{subject}/versions        register {"schema": "..."} -> {"id": N}
  POST /subjects/{subject}                 look up a schema -> {subject, version, id, schema}
  GET  /subjects                           ["subject", ...]
  GET  /subjects/{subject}/versions        [1, 2, ...]
  GET  /subjects/{subject}/versions/{v}    {subject, version, id, schema}; v may be "latest"
  GET  /schemas/ids/{id}                   {"schema": "..."}
  GET  /schemas/ids/{id}/versions          [{"subject": ..., "version": ...}]
  GET  /config, /config/{subject}          {"compatibilityLevel": "..."}
                                           (?defaultToGlobal=true: the global level
                                           for a subject without its own)
  PUT  /config, /config/{subject}          {"compatibility": "..."} -> {"compatibility": "..."}
  POST /compatibility/subjects/{subject}/versions[/{v}]
                                           {"is_compatible": bool[, "messages": [...]]}

Ids are global: the same schema text gets the same id under any subject, and the
same schema registered twice under a subject is the same version.

Compatibility levels (BACKWARD by default, as Confluent's) are enforced only with
--avro-judge: a command that answers compatibility questions with Avro's own
SchemaCompatibility (the JVM judge dev.weir.judges.AvroCompatibility, one JSON
request and answer per line). Then an incompatible version is refused with HTTP 409
and Confluent's error code 409, as Confluent's registry refuses it. Without it levels
are stored and returned but not enforced (the quickstart needs no JVM).

Usage: weir_dev_registry.py [--port N] [--avro-judge 'java -cp … Class']
(port 0: any free port). Prints
"listening on http://127.0.0.1:PORT" once ready, and serves until killed or its
standard input closes.
"""

import argparse
import json
import re
import shlex
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class Judge:
    """The compatibility judge as a child process, asked one question at a time."""

    def __init__(self, command):
        self.command = command
        self.process = None
        self.lock = threading.Lock()

    def messages(self, level, new, existing):
        """Why `new` may not follow `existing` (oldest first) under `level`; [] if it may."""
        if level == "NONE" or not existing:
            return []
        with self.lock:
            if self.process is None:
                self.process = subprocess.Popen(
                    shlex.split(self.command), stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, text=True)
            request = {"level": level, "new": new, "existing": existing}
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the compatibility judge stopped")
        return json.loads(line)["messages"]


class Registry:
    def __init__(self):
        self.lock = threading.Lock()
        self.schemas = []  # id - 1 -> canonical schema text
        self.ids = {}  # canonical text -> id
        self.subjects = {}  # subject -> [id, ...] (index = version - 1)
        self.config = {"": "BACKWARD"}
        self.judge = None  # a Judge: levels are enforced

    def level(self, subject):
        return self.config.get(subject, self.config[""])

    def incompatibilities(self, subject, schema, versions=None):
        """Why `schema` may not be the next version of `subject` (all of its
        versions, or those listed); [] when it may, or when nothing enforces levels."""
        if self.judge is None:
            return []
        with self.lock:
            ids = self.subjects.get(subject, [])
            if versions is not None:
                ids = [ids[v - 1] for v in versions]
            existing = [self.schemas[i - 1] for i in ids]
            level = self.level(subject)
        if versions is not None and not level.endswith("_TRANSITIVE"):
            # An explicit version is checked alone.
            level = level + "_TRANSITIVE" if level != "NONE" else level
        return self.judge.messages(level, schema, existing)

    @staticmethod
    def canonical(schema):
        # Whitespace-insensitive identity, as Confluent compares schemas.
        return json.dumps(json.loads(schema), separators=(",", ":"), sort_keys=True)

    def register(self, subject, schema):
        """The schema's id, or (None, messages) when its subject's level refuses it."""
        text = self.canonical(schema)
        found, _ = self.lookup(subject, schema)
        if found is None:
            refused = self.incompatibilities(subject, schema)
            if refused:
                return None, refused
        with self.lock:
            schema_id = self.ids.get(text)
            if schema_id is None:
                self.schemas.append(schema)
                schema_id = len(self.schemas)
                self.ids[text] = schema_id
            versions = self.subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return schema_id, []

    def lookup(self, subject, schema):
        text = self.canonical(schema)
        with self.lock:
            schema_id = self.ids.get(text)
            versions = self.subjects.get(subject)
            if versions is None:
                return None, 40401
            if schema_id is None or schema_id not in versions:
                return None, 40403
            return self.version_body(subject, versions.index(schema_id) + 1), None

    def version_body(self, subject, version):
        schema_id = self.subjects[subject][version - 1]
        return {
            "subject": subject,
            "version": version,
            "id": schema_id,
            "schema": self.schemas[schema_id - 1],
        }


REGISTRY = Registry()


class Handler(BaseHTTPRequestHandler):
    server_version = "weir-dev-registry/1"

    def log_message(self, format, *args):  # quiet: tests read stdout
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, code, message):
        self.reply(status, {"error_code": code, "message": message})

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            return json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return None

    def path_parts(self):
        return [unquote(p) for p in self.path.split("?")[0].strip("/").split("/") if p]

    def do_GET(self):
        parts = self.path_parts()
        r = REGISTRY
        with r.lock:
            if parts == ["subjects"]:
                return self.reply(200, sorted(r.subjects))
            if len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
                if parts[1] not in r.subjects:
                    return self.error(404, 40401, "Subject not found.")
                return self.reply(200, list(range(1, len(r.subjects[parts[1]]) + 1)))
            if len(parts) == 4 and parts[0] == "subjects" and parts[2] == "versions":
                versions = r.subjects.get(parts[1])
                if versions is None:
                    return self.error(404, 40401, "Subject not found.")
                if parts[3] in ("latest", "-1"):
                    version = len(versions)
                elif re.fullmatch(r"\d+", parts[3]) and 1 <= int(parts[3]) <= len(versions):
                    version = int(parts[3])
                else:
                    return self.error(404, 40402, "Version not found.")
                return self.reply(200, r.version_body(parts[1], version))
            if len(parts) >= 3 and parts[:2] == ["schemas", "ids"] and parts[2].isdigit():
                schema_id = int(parts[2])
                if not 1 <= schema_id <= len(r.schemas):
                    return self.error(404, 40403, "Schema not found")
                if len(parts) == 3:
                    return self.reply(200, {"schema": r.schemas[schema_id - 1]})
                if parts[3:] == ["versions"]:
                    return self.reply(200, [
                        {"subject": s, "version": v.index(schema_id) + 1}
                        for s, v in sorted(r.subjects.items()) if schema_id in v
                    ])
            if parts == ["config"]:
                return self.reply(200, {"compatibilityLevel": r.config[""]})
            if len(parts) == 2 and parts[0] == "config":
                level = r.config.get(parts[1])
                if level is None and "defaulttoglobal=true" in self.path.lower():
                    level = r.config[""]
                if level is None:
                    return self.error(404, 40408, "Subject does not have subject-level compatibility configured")
                return self.reply(200, {"compatibilityLevel": level})
        self.error(404, 404, "Not found")

    def do_POST(self):
        parts = self.path_parts()
        body = self.body()
        if body is None or not isinstance(body.get("schema"), str):
            return self.error(422, 42201, "Invalid schema")
        if body.get("schemaType", "AVRO") != "AVRO":
            return self.error(422, 42201, "Only AVRO schemas are supported")
        try:
            json.loads(body["schema"])
        except ValueError:
            return self.error(422, 42201, "Invalid schema: not JSON")
        if len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
            schema_id, refused = REGISTRY.register(parts[1], body["schema"])
            if schema_id is None:
                return self.error(409, 409, (
                    f"Schema being registered is incompatible with an earlier schema for "
                    f"subject \"{parts[1]}\", details: {json.dumps(refused)}"))
            return self.reply(200, {"id": schema_id})
        if len(parts) in (4, 5) and parts[:2] == ["compatibility", "subjects"] \
                and parts[3] == "versions":
            versions = REGISTRY.subjects.get(parts[2])
            if versions is None:
                return self.error(404, 40401, "Subject not found.")
            chosen = None
            if len(parts) == 5:
                if parts[4] in ("latest", "-1"):
                    chosen = [len(versions)]
                elif re.fullmatch(r"\d+", parts[4]) and 1 <= int(parts[4]) <= len(versions):
                    chosen = [int(parts[4])]
                else:
                    return self.error(404, 40402, "Version not found.")
            refused = REGISTRY.incompatibilities(parts[2], body["schema"], chosen)
            answer = {"is_compatible": not refused}
            if "verbose=true" in self.path.lower():
                answer["messages"] = refused
            return self.reply(200, answer)
        if len(parts) == 2 and parts[0] == "subjects":
            found, code = REGISTRY.lookup(parts[1], body["schema"])
            if found is None:
                message = "Subject not found." if code == 40401 else "Schema not found"
                return self.error(404, code, message)
            return self.reply(200, found)
        self.error(404, 404, "Not found")

    def do_PUT(self):
        parts = self.path_parts()
        body = self.body() or {}
        level = body.get("compatibility")
        if parts and parts[0] == "config" and len(parts) <= 2 and isinstance(level, str):
            with REGISTRY.lock:
                REGISTRY.config[parts[1] if len(parts) == 2 else ""] = level.upper()
            return self.reply(200, {"compatibility": level.upper()})
        self.error(404, 404, "Not found")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--avro-judge", help="command answering compatibility questions")
    args = parser.parse_args()
    if args.avro_judge:
        REGISTRY.judge = Judge(args.avro_judge)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening on http://{args.host}:{server.server_address[1]}", flush=True)
    # Serve until stdin closes (the parent died) or a signal ends the process.
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    server.shutdown()


if __name__ == "__main__":
    main()
