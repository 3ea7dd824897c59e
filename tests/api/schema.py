"""The query response's JSON schema, transcribed from TTAPI's reference page
(OpenAPI 3.1, GET /happyhorse/api/v1/tasks/{task_id}; docs/api.md s.5),
and the small subset of JSON Schema needed to check answers against it:
type, properties, required, enum."""

QUERY_TASK = {
    "type": "object",
    "required": ["request_id", "output"],
    "properties": {
        "request_id": {"type": "string"},
        "output": {
            "type": "object",
            "required": ["task_id", "task_status"],
            "properties": {
                "task_id": {"type": "string"},
                "task_status": {
                    "type": "string",
                    "enum": ["PENDING", "RUNNING", "SUCCEEDED", "FAILED",
                             "CANCELED", "UNKNOWN"],
                },
                "code": {"type": "string"},
                "message": {"type": "string"},
                "submit_time": {"type": "string"},
                "scheduled_time": {"type": "string"},
                "end_time": {"type": "string"},
                "orig_prompt": {"type": "string"},
                "video_url": {"type": "string"},
            },
        },
        "usage": {
            "type": "object",
            "properties": {
                "duration": {"type": "number"},
                "input_video_duration": {"type": "number"},
                "output_video_duration": {"type": "number"},
                "video_count": {"type": "integer"},
                "SR": {"type": "integer"},
                "ratio": {"type": "string"},
            },
        },
    },
}

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and
    not isinstance(v, bool),
}


def validate(value, schema=QUERY_TASK, where="$"):
    """Raise AssertionError naming the first place value breaks schema."""
    t = schema.get("type")
    if t and not _TYPES[t](value):
        raise AssertionError("%s: %r is not of type %s" % (where, value, t))
    if "enum" in schema and value not in schema["enum"]:
        raise AssertionError("%s: %r not in %r" %
                             (where, value, schema["enum"]))
    for name in schema.get("required", []):
        if name not in value:
            raise AssertionError("%s: required member %s missing" %
                                 (where, name))
    for name, sub in schema.get("properties", {}).items():
        if isinstance(value, dict) and name in value:
            validate(value[name], sub, where + "." + name)
