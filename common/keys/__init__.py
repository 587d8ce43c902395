"""The key ring (the CA, the JWT signing keys, the refresh secrets), its store and sealing, and the Argon2id
parameter sets recorded beside it."""
