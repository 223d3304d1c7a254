"""Kafka client options: one builder for PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from streams.errors import SettingsError
from streams.kafka.client_options import client_options, faust_credentials
from streams.settings import Settings
from tests.support.certificates import make_certificates

SASL = {"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "svc",
        "KAFKA_SASL_PASSWORD": "hunter2"}


def test_plaintext_by_default() -> None:
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9093"})
    options = client_options(settings, client_id="me")
    assert options["bootstrap_servers"] == "k1:9092,k2:9093"
    assert options["security_protocol"] == "PLAINTEXT" and options["client_id"] == "me"
    assert "sasl_mechanism" not in options
    assert faust_credentials(settings) is None


def test_sasl_settings_alone_keep_meaning_sasl_plaintext() -> None:
    settings = Settings.from_env(SASL)
    options = client_options(settings)
    assert (options["security_protocol"], options["sasl_mechanism"],
            options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "SASL_PLAINTEXT", "SCRAM-SHA-512", "svc", "hunter2")
    assert options["ssl_context"] is None
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert "hunter2" not in repr(credentials) and "hunter2" not in repr(settings)


def test_sasl_ssl_uses_the_ca_file_and_checks_host_names(tmp_path: Path) -> None:
    pem = make_certificates(tmp_path)
    settings = Settings.from_env({**SASL, "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
                                  "KAFKA_SSL_CAFILE": str(pem.ca)})
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "streams test CA"),),)]


def test_ssl_with_a_client_certificate_and_an_encrypted_key(tmp_path: Path) -> None:
    pem = make_certificates(tmp_path, key_password="keypw")
    settings = Settings.from_env({
        "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(pem.ca),
        "KAFKA_SSL_CERTFILE": str(pem.cert), "KAFKA_SSL_KEYFILE": str(pem.key),
        "KAFKA_SSL_KEY_PASSWORD": "keypw", "KAFKA_SSL_CHECK_HOSTNAME": "false"})
    options = client_options(settings)
    assert options["security_protocol"] == "SSL"
    assert options["ssl_context"].check_hostname is False
    assert isinstance(faust_credentials(settings), faust.SSLCredentials)


def test_a_key_that_cannot_be_opened_is_one_line_naming_the_files(tmp_path: Path) -> None:
    pem = make_certificates(tmp_path, key_password="keypw")
    settings = Settings.from_env({
        "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": str(pem.cert),
        "KAFKA_SSL_KEYFILE": str(pem.key), "KAFKA_SSL_KEY_PASSWORD": "wrong"})
    with pytest.raises(SettingsError) as caught:
        client_options(settings)
    message = str(caught.value)
    assert "KAFKA_SSL_CERTFILE" in message and "\n" not in message and "wrong" not in message


def test_a_ca_file_that_is_not_pem_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    settings = Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL",
                                  "KAFKA_SSL_CAFILE": str(bad)})
    with pytest.raises(SettingsError, match=r"^KAFKA_SSL_CAFILE='.*ca.pem' cannot be used"):
        client_options(settings)


@pytest.mark.parametrize(("env", "message"), [
    ({"KAFKA_SECURITY_PROTOCOL": "TLS"},
     "KAFKA_SECURITY_PROTOCOL='TLS' is invalid: expected one of PLAINTEXT, SSL, "
     "SASL_PLAINTEXT, SASL_SSL"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
     "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and "
     "KAFKA_SASL_PASSWORD"),
    ({**SASL, "KAFKA_SECURITY_PROTOCOL": "SSL"},
     "KAFKA_SASL_MECHANISM is set but KAFKA_SECURITY_PROTOCOL=SSL does not use SASL: use "
     "SASL_SSL"),
    ({"KAFKA_SSL_CAFILE": __file__},
     "KAFKA_SSL_CAFILE set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use TLS: use SSL "
     "or SASL_SSL"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": __file__},
     "KAFKA_SSL_KEYFILE or KAFKA_SSL_KEY_PASSWORD set without KAFKA_SSL_CERTFILE: the key "
     "belongs to a client certificate"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nowhere/ca.pem"},
     "KAFKA_SSL_CAFILE='/nowhere/ca.pem' is invalid: expected a readable file"),
    ({"KAFKA_SSL_CHECK_HOSTNAME": "maybe"},
     "KAFKA_SSL_CHECK_HOSTNAME='maybe' is invalid: expected 1/true/yes/on or 0/false/no/off"),
])
def test_security_settings_are_checked_with_one_line(env: dict[str, str],
                                                     message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert str(caught.value) == message


def test_a_bootstrap_list_alone_means_plaintext() -> None:
    assert client_options("127.0.0.1:1")["security_protocol"] == "PLAINTEXT"
