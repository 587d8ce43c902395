"""Cryptography with no storage: opaque tokens and digests, device keys and their signatures, password
hashing, certificates, DPoP proofs."""
