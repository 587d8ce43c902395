"""What every package needs and no other could own: the settings, the error codes and problem details, the
texts (the catalogues, the brand, name checks), time and URL helpers. It imports nothing of the project."""
