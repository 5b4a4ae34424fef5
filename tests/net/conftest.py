"""Fixtures shared by the network tests."""

from __future__ import annotations

import ssl

import pytest


@pytest.fixture
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Server and client contexts for mutual TLS, from a throwaway CA with a cert for 127.0.0.1."""
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.verify_mode = ssl.CERT_REQUIRED
    cert.configure_cert(server)
    authority.configure_trust(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    cert.configure_cert(client)
    authority.configure_trust(client)
    return server, client
