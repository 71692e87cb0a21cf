"""The chat protocol of examples/chat as an API Gateway WebSocket Lambda handler.

Written as for AWS, in the style of the API Gateway chat samples: routes
$connect, $disconnect, registerUser, sendPrivateMessage and $default; frames
to other connections go through the management API, with boto3's
apigatewaymanagementapi client, on the endpoint built from the event:
https://{domainName}/{stage} on AWS. Only MANAGEMENT_API_SCHEME (http for a
local router without TLS) says where it runs.

The sample keeps user IDs in a DynamoDB table. This one keeps them in the
process, which is right only where one execution environment serves every
event, as the Runtime Interface Emulator does.
"""
import json
import os
import re

import boto3

MAX_MESSAGE_LENGTH = 2000
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
ACTIONS = ["registerUser", "sendPrivateMessage", "join", "leave", "sendMessage"]

users = {}        # user ID -> connection ID
connections = {}  # connection ID -> user ID
_clients = {}     # endpoint -> management API client


def management_api(event):
    rc = event["requestContext"]
    scheme = os.environ.get("MANAGEMENT_API_SCHEME", "https")
    endpoint = f"{scheme}://{rc['domainName']}/{rc['stage']}"
    if endpoint not in _clients:
        _clients[endpoint] = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)
    return _clients[endpoint]


def encode(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def reply(obj):
    """Answers the caller: the route's response, sent back as one frame."""
    return {"statusCode": 200, "body": encode(obj)}


def error(code, message, **fields):
    return reply({"type": "error", "code": code, "message": message, **fields})


def invalid_name(what):
    return f"{what} must be 1 to 32 letters, digits, '_', '.' or '-'."


def post(event, connection_id, obj):
    management_api(event).post_to_connection(ConnectionId=connection_id, Data=encode(obj).encode())


def depart(connection_id):
    user = connections.pop(connection_id, None)
    if user is not None and users.get(user) == connection_id:
        del users[user]


def handler(event, context):
    rc = event["requestContext"]
    route, me = rc["routeKey"], rc["connectionId"]
    if route == "$connect":
        return {"statusCode": 200}
    if route == "$disconnect":
        depart(me)
        return {"statusCode": 200}

    try:
        body = json.loads(event.get("body") or "")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return error("invalidRequest", 'Frames must be JSON objects with an "action" field.')

    if route == "registerUser":
        user = body.get("userId")
        if not isinstance(user, str) or not NAME.match(user):
            return error("invalidRequest", invalid_name("userId"), action=route)
        holder = users.get(user)
        if holder is not None and holder != me:
            try:
                management_api(event).get_connection(ConnectionId=holder)
                return error("userIdTaken", f'The user ID "{user}" is taken: choose another one.', action=route)
            except management_api(event).exceptions.GoneException:
                depart(holder)  # closed; its $disconnect has not run yet
        depart(me)
        users[user], connections[me] = me, user
        post(event, me, {"type": "registrationSuccess", "userId": user})
        return {"statusCode": 200}

    if route == "sendPrivateMessage":
        target = body.get("targetUserId")
        if not isinstance(target, str) or not NAME.match(target):
            return error("invalidRequest", invalid_name("targetUserId"), action=route)
        message = body.get("message")
        if not isinstance(message, str) or not 1 <= len(message) <= MAX_MESSAGE_LENGTH:
            return error("invalidRequest", f"message must be 1 to {MAX_MESSAGE_LENGTH} characters.",
                         action=route, targetUserId=target)
        sender = connections.get(me)
        if sender is None:
            return error("notRegistered", "Register a user ID first.", action=route, targetUserId=target)
        unknown = error("unknownUser", f'No user "{target}" is online.', action=route, targetUserId=target)
        if target not in users:
            return unknown
        try:
            post(event, users[target], {"type": "privateMessage", "fromUserId": sender, "message": message})
        except management_api(event).exceptions.GoneException:
            return unknown
        return {"statusCode": 200}

    action = body.get("action")
    if not isinstance(action, str) or not action:
        return error("invalidRequest", 'The "action" field is missing.')
    return error("unknownAction", f'Unknown action "{action}": use one of {", ".join(ACTIONS)}.', action=action)
