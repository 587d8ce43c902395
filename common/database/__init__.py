"""DynamoDB: the client and its wire format, the tables, and the helpers every store uses."""
