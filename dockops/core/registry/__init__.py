"""Talking to a registry: the v2 API and its tokens, catalog and tags, deletes and retention,
credentials kept where the docker CLI keeps them, and certs.d trust."""
