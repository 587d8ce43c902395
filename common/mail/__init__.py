"""Messages to people and how they are sent: SES, SNS, SMTP or the log."""
