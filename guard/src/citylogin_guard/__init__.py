"""citylogin-guard: protect an app's API with citylogin access tokens (docs/guides/protect-your-api.md).

Imports neither Flask nor any ASGI framework: `Guard.init_app` and `Guard.required` import Flask
when called, and `GuardMiddleware` is plain ASGI."""
from citylogin_guard.asgi import GuardMiddleware
from citylogin_guard.errors import Code, Unauthorized, Unavailable
from citylogin_guard.guard import Guard, Principal
from citylogin_guard.replay import MemoryReplayStore, ReplayStore

__all__ = ["Code", "Guard", "GuardMiddleware", "MemoryReplayStore", "Principal", "ReplayStore", "Unauthorized",
           "Unavailable"]
