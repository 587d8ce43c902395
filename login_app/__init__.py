"""The login service over HTTP: /login and /account (python -m login_app.app_login, port 5002)."""
