#!/usr/bin/env python3
"""A Lambda custom runtime in Python's standard library.

It speaks the Lambda Runtime API (AWS_LAMBDA_RUNTIME_API) as AWS Lambda's own
runtimes do: it fetches the next event, calls the handler, and posts the
result, or the error. Run it under the Runtime Interface Emulator:

    aws-lambda-rie python3 bootstrap.py chat.handler

The handler, "module.function", is the last argument or $_HANDLER; the module
is looked up beside this file first.
"""
import http.client
import importlib
import json
import os
import sys
import traceback

API = "/2018-06-01/runtime"


class Context:
    """The handler's context object: the fields handlers use most."""

    def __init__(self, headers):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms", "0") or 0)

    def get_remaining_time_in_millis(self):
        import time
        return max(0, self._deadline_ms - int(time.time() * 1000))


def load_handler():
    spec = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("_HANDLER", "")
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise SystemExit(f"bootstrap: handler {spec!r} is not module.function")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    return getattr(importlib.import_module(module_name), function_name)


def call(method, path, body=None, headers=None):
    """One request to the Runtime API, on a connection of its own: the API
    may close an idle connection between events."""
    conn = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        conn.request(method, API + path, body, headers or {})
        resp = conn.getresponse()
        return resp.headers, resp.read()
    finally:
        conn.close()


def main():
    try:
        handler = load_handler()
    except Exception as e:  # report an init error as Lambda runtimes do
        call("POST", "/init/error", json.dumps({"errorMessage": str(e), "errorType": type(e).__name__}),
             {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
        sys.exit(1)
    while True:
        try:
            headers, body = call("GET", "/invocation/next")
        except (OSError, http.client.HTTPException):
            sys.exit(0)  # the Runtime API is gone: the environment is shutting down
        context = Context(headers)
        rid = context.aws_request_id
        try:
            result = json.dumps(handler(json.loads(body), context))
        except Exception as e:
            print(f"bootstrap: handler failed: {e!r}", file=sys.stderr, flush=True)
            call("POST", f"/invocation/{rid}/error", json.dumps({
                "errorMessage": str(e),
                "errorType": type(e).__name__,
                "stackTrace": traceback.format_exception(e),
            }), {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
            continue
        call("POST", f"/invocation/{rid}/response", result)


if __name__ == "__main__":
    main()
