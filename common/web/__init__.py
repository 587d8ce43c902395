"""What makes a Flask app of citylogin: the app's context, the factory, errors as problem+json, CORS,
OpenAPI, logs, metrics and the audit trail."""
