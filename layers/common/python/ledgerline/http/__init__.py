"""HTTP edge: the Endpoint every route handler uses, request schemas, responses."""

from aws_lambda_powertools.event_handler import Response

from ledgerline.caller import Principal, Request
from ledgerline.http.endpoint import Endpoint, json_response

__all__ = ["Endpoint", "Principal", "Request", "Response", "json_response"]
