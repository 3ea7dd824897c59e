"""Check docs/openapi.json, and every response the API tests received
against it.

    python3 tests/api/check_openapi.py LOGFILE

LOGFILE holds one JSON line per response (tests/api/lib.py writes it when
PADDOCK_RESPONSE_LOG names it; tests/run.sh does that). Three checks:

1. the document: OpenAPI 3.1 as far as it can be told offline (the required
   members, every $ref resolves, every schema is a valid JSON Schema 2020-12,
   operation ids are unique, path parameters are declared, responses have
   descriptions, security schemes exist);
2. a paddock started here serves the same bytes at GET /openapi.json and
   GET /happyhorse/openapi.json;
3. each recorded response: the operation is found by method and path
   template (as paddock's router matches: percent-decoded but for %00,
   trailing slashes ignored), the status is among its responses, required
   headers are present and valid, and the body validates against the
   schema of its media type (Draft 2020-12, $refs resolved over the whole
   document). A request no operation describes must get an answer of
   x-paddock-unrouted (404 for an unknown path, 405 for another method);
   x-paddock-any-request lists what any request may get. A 2xx answer to a
   request with a JSON body also checks that body against the operation's
   requestBody schema (the document must not refuse what paddock takes).

Prints one line, "PASS api.check_openapi (...)" or "FAIL ..." with
each problem below it, for tests/run.sh to count; exits 1 on any problem.
Needs python3-jsonschema (4.10 of Debian 12, or later).
"""

import json
import os
import re
import sys
from urllib.parse import quote

import jsonschema
from jsonschema import Draft202012Validator

# This checker's own requests are not part of the log it reads.
os.environ.pop("PADDOCK_RESPONSE_LOG", None)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DOC_PATH = os.path.join(ROOT, "docs", "openapi.json")
BASE = "urn:paddock:openapi"  # the document's URI for $ref resolution
METHODS = ("get", "put", "post", "delete", "options", "head", "patch",
           "trace")
SHOW_MAX = 60  # problems printed in full; the rest are counted


# ------------------------------------------------------------ the document

def pointer_get(doc, pointer):
    """The value at a JSON pointer ("/components/schemas/X"); KeyError."""
    node = doc
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node[part]
    return node


def pointer_join(pointer, *parts):
    return pointer + "".join(
        "/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class Document:
    def __init__(self, raw):
        self.raw = raw
        self.doc = json.loads(raw)
        self._validators = {}
        try:  # jsonschema >= 4.18
            import referencing
            import referencing.jsonschema
            resource = referencing.Resource.from_contents(
                self.doc,
                default_specification=referencing.jsonschema.DRAFT202012)
            registry = referencing.Registry().with_resource(BASE, resource)
            self._make = lambda root: Draft202012Validator(
                root, registry=registry)
        except ImportError:  # Debian 12's 4.10
            resolver = jsonschema.RefResolver(BASE, self.doc,
                                              store={BASE: self.doc})
            self._make = lambda root: Draft202012Validator(
                root, resolver=resolver)

    def deref(self, node, pointer):
        """Follow a chain of $ref objects: (target, its pointer)."""
        seen = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/") or ref in seen:
                raise KeyError(ref)
            seen.add(ref)
            pointer = ref[1:]
            node = pointer_get(self.doc, pointer)
        return node, pointer

    def errors(self, pointer, value):
        """Schema violations of value against the schema at pointer."""
        v = self._validators.get(pointer)
        if v is None:
            v = self._make({"$ref": BASE + "#" + quote(pointer, "/~")})
            self._validators[pointer] = v
        out = []
        for e in sorted(v.iter_errors(value),
                        key=lambda e: [str(p) for p in e.path]):
            e = closest(e)
            where = "".join("[%r]" % p for p in e.absolute_path) or "(root)"
            msg = e.message if e.validator != "not" else \
                "must not match %s" % json.dumps(e.validator_value)
            out.append("%s: %s" % (where, short(msg, 200)))
        return out


def closest(e):
    """The error to show for a failed oneOf or anyOf: the one of the branch
    that came closest (no const failed in it, as a branch for another
    task_status would; the deepest errors; not only type errors)."""
    while e.context:
        branches = {}
        for sub in e.context:
            branches.setdefault(sub.schema_path[0], []).append(sub)

        def rank(errs):
            return (any(x.validator == "const" for x in errs),
                    -max(len(x.absolute_path) for x in errs),
                    all(x.validator == "type" for x in errs))
        errs = min(branches.values(), key=rank)
        e = max(errs, key=lambda x: len(x.absolute_path))
    return e


def short(text, n=300):
    return text if len(text) <= n else text[:n] + "..."


def walk(node, pointer=""):
    """Every (value, pointer) in the tree."""
    yield node, pointer
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, pointer_join(pointer, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, pointer_join(pointer, i))


def schema_pointers(d):
    """Pointers of every schema the document holds, outside schemas."""
    doc = d.doc
    out = [pointer_join("/components/schemas", k)
           for k in doc.get("components", {}).get("schemas", {})]
    for node, ptr in walk(doc):
        if not isinstance(node, dict) or ptr.startswith("/components/schemas"):
            continue
        parent = ptr.rsplit("/", 1)[0]
        if "schema" in node and isinstance(node["schema"], dict) and \
                ("in" in node or parent.endswith("/content") or
                 "/headers" in parent):
            out.append(pointer_join(ptr, "schema"))
    return out


def check_document(d):
    problems = []
    doc = d.doc
    if not isinstance(doc.get("openapi"), str) or \
            not re.match(r"^3\.1\.\d+$", doc["openapi"]):
        problems.append("openapi must be 3.1.x")
    info = doc.get("info")
    if not isinstance(info, dict) or not isinstance(info.get("title"), str) \
            or not isinstance(info.get("version"), str):
        problems.append("info.title and info.version are required strings")
    if not any(k in doc for k in ("paths", "components", "webhooks")):
        problems.append("one of paths, components, webhooks is required")
    for k in doc:
        if k not in ("openapi", "info", "jsonSchemaDialect", "servers",
                     "paths", "webhooks", "components", "security", "tags",
                     "externalDocs") and not k.startswith("x-"):
            problems.append("unknown top-level member %s" % k)
    # Every $ref resolves.
    for node, ptr in walk(doc):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            try:
                if not ref.startswith("#/"):
                    raise KeyError(ref)
                pointer_get(doc, ref[1:])
            except (KeyError, IndexError, ValueError, TypeError):
                problems.append("%s: $ref %s does not resolve" % (ptr, ref))
    if problems:
        return problems  # the rest needs the references
    # Every schema is a JSON Schema 2020-12.
    for ptr in schema_pointers(d):
        try:
            Draft202012Validator.check_schema(pointer_get(doc, ptr))
        except jsonschema.SchemaError as e:
            problems.append("%s: not a valid 2020-12 schema: %s" %
                            (ptr, short(e.message)))
    schemes = doc.get("components", {}).get("securitySchemes", {})
    op_ids = {}
    for tmpl, item in doc.get("paths", {}).items():
        if not tmpl.startswith("/"):
            problems.append("path %s does not start with /" % tmpl)
        item_ptr = pointer_join("/paths", tmpl)
        item, item_ptr = d.deref(item, item_ptr)
        names = set(re.findall(r"\{([^}/]+)\}", tmpl))
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            where = "%s %s" % (method.upper(), tmpl)
            oid = op.get("operationId")
            if oid in op_ids:
                problems.append("%s: operationId %s also on %s" %
                                (where, oid, op_ids[oid]))
            op_ids[oid] = where
            declared = set()
            for p in item.get("parameters", []) + op.get("parameters", []):
                p, _ = d.deref(p, "")
                if p.get("in") == "path":
                    declared.add(p.get("name"))
                    if p.get("required") is not True:
                        problems.append("%s: path parameter %s must be "
                                        "required" % (where, p.get("name")))
            if declared != names:
                problems.append("%s: path parameters %s, template has %s" %
                                (where, sorted(declared), sorted(names)))
            if not op.get("responses"):
                problems.append("%s: no responses" % where)
            for code, resp in op.get("responses", {}).items():
                if not re.match(r"^([1-5]([0-9]{2}|XX)|default)$", code):
                    problems.append("%s: response key %s" % (where, code))
                resp, _ = d.deref(resp, "")
                if not isinstance(resp.get("description"), str):
                    problems.append("%s %s: a response needs a description"
                                    % (where, code))
            for req in op.get("security", doc.get("security", [])):
                for name in req:
                    if name not in schemes:
                        problems.append("%s: security scheme %s is not "
                                        "defined" % (where, name))
    for ext in ("x-paddock-unrouted", "x-paddock-any-request"):
        if not isinstance(doc.get(ext, {}).get("responses"), dict):
            problems.append("%s.responses is missing" % ext)
    # The OpenAPI 3.1 meta-schema too, where openapi-spec-validator is
    # installed (it is not a Debian 12 package; the checks above stand
    # without it).
    try:
        from openapi_spec_validator import validate as oas_validate
    except ImportError:
        oas_validate = None
    if oas_validate and not problems:
        try:
            oas_validate(doc)
        except Exception as e:  # its error classes vary between versions
            problems.append("openapi-spec-validator: %s" % short(str(e)))
    return problems


# ----------------------------------------------------------- the responses

def decode_path(path):
    """The path as paddock's router sees it: percent-decoded except %00,
    which stays literal (http.c)."""
    return re.sub(r"%([0-9A-Fa-f]{2})",
                  lambda m: m.group(0) if m.group(1) == "00"
                  else chr(int(m.group(1), 16)), path)


def strip_slashes(path):
    """api.c: "/tasks/{id}/" is "/tasks/{id}"."""
    return path.rstrip("/") or "/"


def template_regex(tmpl):
    return re.compile("^" + re.sub(r"\\\{([^}/]+)\\\}", r"(?P<\1>[^/]+)",
                                   re.escape(tmpl)) + "$")


class Router:
    """Path templates of the document, matched like paddock's router."""

    def __init__(self, d):
        self.d = d
        self.routes = []  # (regex, regex without trailing /, item, pointer)
        for tmpl, item in d.doc["paths"].items():
            item, ptr = d.deref(item, pointer_join("/paths", tmpl))
            self.routes.append((tmpl, template_regex(tmpl),
                                template_regex(strip_slashes(tmpl)), item,
                                ptr))

    def _params_ok(self, item, ptr, values):
        """Do the path segments satisfy their parameters' schemas?"""
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            for i, p in enumerate(op.get("parameters", [])):
                p, pptr = self.d.deref(
                    p, pointer_join(ptr, method, "parameters", i))
                if p.get("in") == "path" and p.get("name") in values and \
                        self.d.errors(pointer_join(pptr, "schema"),
                                      values[p["name"]]):
                    return False
        return True

    def find(self, method, path):
        """[(template, path item, pointer)] for a decoded request path:
        the templates matching it as sent, else those matching with
        trailing slashes dropped from both; those with the method first."""
        for exact in (True, False):
            found = []
            for tmpl, rx, rx_stripped, item, ptr in self.routes:
                m = rx.match(path) if exact else \
                    rx_stripped.match(strip_slashes(path))
                if m and self._params_ok(item, ptr, m.groupdict()):
                    found.append((tmpl, item, ptr))
            if found:
                return sorted(found, key=lambda f: method not in f[1])
        return []


def media_type(content_type):
    return (content_type or "").split(";")[0].strip().lower()


def header_value(schema, value):
    """A header's text as the JSON value its schema describes."""
    types = schema.get("type")
    if types == "integer" or (isinstance(types, list) and "integer" in types):
        try:
            return int(value)
        except ValueError:
            return value
    return value


def check_response(d, router, rec):
    """Problems of one recorded response (a list of strings)."""
    problems = []
    method = rec["method"].lower()
    status = str(rec["status"])
    found = router.find(method, decode_path(rec["path"]))
    op = op_ptr = None
    if found and method in found[0][1]:
        tmpl, item, ptr = found[0]
        op, op_ptr = item[method], pointer_join(ptr, method)
        responses, resp_ptr = op["responses"], pointer_join(op_ptr,
                                                            "responses")
        what = "%s %s" % (method.upper(), tmpl)
    else:
        ext = d.doc["x-paddock-unrouted"]["responses"]
        want = "405" if found else "404"
        what = "%s %s (%s)" % (method.upper(), rec["path"],
                               "a route with other methods" if found
                               else "no route")
        responses, resp_ptr = {}, "/x-paddock-unrouted/responses"
        if status == want:
            responses = {status: ext[status]}
        elif status not in d.doc["x-paddock-any-request"]["responses"]:
            return ["%s: answered %s; the document says %s" %
                    (what, status, want)]
    resp = None
    if status in responses:
        resp, rptr = responses[status], pointer_join(resp_ptr, status)
    elif status[0] + "XX" in responses:
        resp, rptr = responses[status[0] + "XX"], pointer_join(
            resp_ptr, status[0] + "XX")
    elif "default" in responses:
        resp, rptr = responses["default"], pointer_join(resp_ptr, "default")
    elif status in d.doc["x-paddock-any-request"]["responses"]:
        resp = d.doc["x-paddock-any-request"]["responses"][status]
        rptr = pointer_join("/x-paddock-any-request/responses", status)
    else:
        return ["%s: status %s is not described (only %s)" %
                (what, status, ", ".join(sorted(responses)))]
    resp, rptr = d.deref(resp, rptr)
    where = "%s -> %s" % (what, status)

    # Headers.
    got = rec.get("headers", {})
    for name, h in resp.get("headers", {}).items():
        h, hptr = d.deref(h, pointer_join(rptr, "headers", name))
        if name.lower() == "content-type":
            continue  # OpenAPI ignores it; the media type is checked below
        value = got.get(name.lower())
        if value is None:
            if h.get("required"):
                problems.append("%s: header %s is missing" % (where, name))
            continue
        if "schema" in h:
            s, sptr = d.deref(h["schema"], pointer_join(hptr, "schema"))
            for e in d.errors(sptr, header_value(s, value)):
                problems.append("%s: header %s %r: %s" %
                                (where, name, value, e))

    # Body.
    content = resp.get("content")
    length = rec.get("body_length", 0)
    if method == "head":
        pass  # no body; its headers are checked above
    elif not content:
        if length:
            problems.append("%s: a body (%s, %d bytes) where none is "
                            "described" % (where, rec.get("content_type"),
                                           length))
    else:
        mt = media_type(rec.get("content_type"))
        key = next((k for k in content if media_type(k) == mt), None) or \
            next((k for k in content
                  if k == mt.split("/")[0] + "/*" or k == "*/*"), None)
        if key is None:
            problems.append("%s: Content-Type %r is not among %s" %
                            (where, rec.get("content_type"),
                             ", ".join(content)))
        elif "schema" in content[key]:
            sptr = pointer_join(rptr, "content", key, "schema")
            if rec.get("body_binary"):
                pass  # a video: its type was checked, its bytes are not
            elif "body" not in rec:
                problems.append("%s: the body is not UTF-8 text" % where)
            elif mt == "application/json" or mt.endswith("+json"):
                try:
                    body = json.loads(rec["body"])
                except ValueError as e:
                    problems.append("%s: the body is not JSON (%s): %r" %
                                    (where, e, rec["body"][:200]))
                else:
                    for e in d.errors(sptr, body):
                        problems.append("%s: body %s" % (where, e))
            else:
                for e in d.errors(sptr, rec["body"]):
                    problems.append("%s: body %s" % (where, e))

    # The request body of an accepted request.
    if op is not None and status.startswith("2") and \
            rec.get("request_body") and "requestBody" in op:
        rb, rbptr = d.deref(op["requestBody"],
                            pointer_join(op_ptr, "requestBody"))
        key = next((k for k in rb.get("content", {})
                    if media_type(k) == "application/json"), None)
        if key and "schema" in rb["content"][key]:
            try:
                sent = json.loads(rec["request_body"])
            except ValueError:
                sent = None  # paddock took a body that is not JSON?
                problems.append("%s: accepted a request body that is not "
                                "JSON" % where)
            if sent is not None:
                sptr = pointer_join(rbptr, "content", key, "schema")
                for e in d.errors(sptr, sent):
                    problems.append("%s: paddock accepted a request body "
                                    "the document refuses: %s" % (where, e))
    return problems


# ------------------------------------------------------------- served copy

def check_served(d):
    problems = []
    srv = lib.Server(args=["--workers", "0"]).start()
    try:
        for path in ("/openapi.json", lib.TT + "/openapi.json"):
            r = srv.request("GET", path)
            if r.status != 200:
                problems.append("GET %s answered %d" % (path, r.status))
                continue
            if r.headers.get("content-type") != "application/json":
                problems.append("GET %s: Content-Type %r" %
                                (path, r.headers.get("content-type")))
            if r.body != d.raw:
                problems.append("GET %s: %d bytes that differ from "
                                "docs/openapi.json (%d bytes); rebuild?" %
                                (path, len(r.body), len(d.raw)))
    finally:
        srv.stop()
        srv.cleanup()
    return problems


# -------------------------------------------------------------------- main

def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    problems = []
    with open(DOC_PATH, "rb") as f:
        raw = f.read()
    try:
        d = Document(raw)
    except ValueError as e:
        print("FAIL api.check_openapi (docs/openapi.json is not JSON: %s)" % e)
        return 1
    problems += ["document: " + p for p in check_document(d)]
    if problems:
        print("FAIL api.check_openapi (the document)")
        for p in problems:
            print("  " + p)
        return 1
    problems += ["served: " + p for p in check_served(d)]

    router = Router(d)
    n = 0
    seen = {}
    try:
        with open(sys.argv[1], encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as e:
        lines = []
        problems.append("log: %s" % e)
    for i, line in enumerate(lines):
        try:
            rec = json.loads(line)
        except ValueError:
            problems.append("log line %d is not JSON" % (i + 1))
            continue
        n += 1
        for p in check_response(d, router, rec):
            # One line per problem; repeats (same case, same problem) once.
            key = (rec.get("case"), p)
            if key in seen:
                seen[key] += 1
                continue
            seen[key] = 1
            problems.append("%s\n      in %s: %s %s" %
                            (p, rec.get("case"), rec["method"],
                             short(rec["target"], 160)))
    if n == 0 and not problems:
        problems.append("no responses recorded (is PADDOCK_RESPONSE_LOG set "
                        "for the API tests?)")
    if problems:
        print("FAIL api.check_openapi (%d problems, %d responses checked)" %
              (len(problems), n))
        for p in problems[:SHOW_MAX]:
            print("  " + p)
        if len(problems) > SHOW_MAX:
            print("  ... and %d more" % (len(problems) - SHOW_MAX))
        return 1
    print("PASS api.check_openapi (%d responses valid against docs/openapi.json)"
          % n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
