"""HTTPS through an ssl: endpoint: the third encrypted way to the results,
beside FTPS and SFTP. The daemon's own URLs then say https."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from pathlib import Path

from tests.daemon import Daemon
from tests.polling import wait_for
from tests.test_ftps import make_certificate


def test_an_ssl_endpoint_serves_https_and_names_itself_so(tmp_path: Path, daemons: list[Daemon]) -> None:
    cert, key = make_certificate(tmp_path)
    daemon = Daemon(tmp_path / "data", "--http", f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
                    "--admin", "tcp:0:interface=127.0.0.1")
    daemons.append(daemon)
    daemon.start(wait=False)
    wait_for(lambda: (daemon.data_dir / "endpoints.json").exists() and "oseod is running" in daemon.log(), 60,
             "the daemon to run")
    url = daemon.endpoints["http"]
    assert url.startswith("https://127.0.0.1:")

    trusting = ssl.create_default_context(cafile=str(cert))
    with urllib.request.urlopen(f"{url}/oseo?service=OS&request=GetCapabilities", context=trusting,
                                timeout=30) as response:
        assert response.status == 200
        assert b"Capabilities" in response.read()
    # A client that does not know the certificate refuses it.
    try:
        urllib.request.urlopen(f"{url}/health", context=ssl.create_default_context(), timeout=30)
    except urllib.error.URLError as e:
        assert isinstance(e.reason, ssl.SSLCertVerificationError)
    else:
        raise AssertionError("an untrusted certificate was accepted")
