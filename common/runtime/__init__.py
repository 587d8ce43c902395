"""The app's context: what every request of a service reads (settings, the DynamoDB client, the key
ring, the password hasher, the notifier, the clock), and how it is built from the settings."""
