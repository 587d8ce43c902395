"""What the /device blueprint asks of the packages above devices/ (devices.views.DeviceFlows), by name: the
service that mounts the blueprint gives this module."""
from __future__ import annotations

from flows.device_enrol import enrol, request_code as request_enrol_code
from flows.pairing import register_paired_device
from flows.recovery import recover_device

__all__ = ["enrol", "recover_device", "register_paired_device", "request_enrol_code"]
