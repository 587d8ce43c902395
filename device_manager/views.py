"""HTTP routes of /device: parse, call one service function, shape the answer."""
from __future__ import annotations

from flask import Blueprint, Response

from common.context import ctx
from common.openapi import operation

bp = Blueprint("device_manager", __name__, url_prefix="/device")


@bp.get("/ca.pem")
@operation("The CA certificate that issues device certificates")
def ca_certificate():
    return Response(ctx().ca.certificate_pem(), mimetype="application/x-pem-file")
