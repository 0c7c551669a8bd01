"""Start the offline Entra ID emulator from Python and drive it.

    from entra_emulator import Emulator

    with Emulator.start() as emu:
        env = emu.profile("client_secret")      # AZURE_* variables and CA trust for one flow
        emu.revoke("22222222-2222-2222-2222-222222222222")

The binary is found, in order: the ``binary`` argument, ``ENTRA_EMULATOR_BIN``, a ``bin/``
folder inside this package, the environment's scripts folder (where this package's wheel installs
it, next to ``python``), then ``PATH``.
"""

import json
import os
import shutil
import ssl
import subprocess
import sysconfig
import tempfile
import time
import urllib.request

__all__ = ["Emulator", "EmulatorError", "find_binary"]


class EmulatorError(RuntimeError):
    """The emulator could not start, or a control-plane call failed."""


def find_binary(binary=None):
    """The `entra-emulator` executable to run."""
    name = "entra-emulator.exe" if os.name == "nt" else "entra-emulator"
    candidates = [binary, os.environ.get("ENTRA_EMULATOR_BIN"),
                  os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", name),
                  os.path.join(sysconfig.get_path("scripts"), name),
                  shutil.which("entra-emulator")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise EmulatorError(
        "no entra-emulator binary: install this package's wheel (it carries one), pass binary=, set "
        "ENTRA_EMULATOR_BIN, or put entra-emulator on PATH (cargo install --path emulator)")


class Emulator:
    """A running emulator on free loopback ports, with its own state directory."""

    def __init__(self, process, ready, workdir, owns_workdir):
        self._process = process
        self.ready = ready
        self._workdir = workdir
        self._owns_workdir = owns_workdir
        self._tls = ssl.create_default_context(cafile=ready["ca_cert_path"])

    @classmethod
    def start(cls, binary=None, state_dir=None, seed_file=None, timeout=60.0, extra_args=()):
        """Starts the emulator and waits (at most `timeout` seconds) for its ready file."""
        owns = state_dir is None
        workdir = tempfile.mkdtemp(prefix="entra-emulator-") if owns else state_dir
        ready_path = os.path.join(workdir, "ready.json")
        args = [find_binary(binary), "--https-port", "0", "--http-port", "0",
                "--service-fabric-port", "0", "--state-dir", os.path.join(workdir, "state"),
                "--ready-file", ready_path, *extra_args]
        if seed_file:
            args += ["--config", seed_file]
        log = open(os.path.join(workdir, "emulator.log"), "wb")
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not os.path.exists(ready_path):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise EmulatorError(f"the emulator did not become ready; see {log.name}")
            time.sleep(0.05)
        with open(ready_path, encoding="utf-8") as f:
            ready = json.load(f)
        return cls(process, ready, workdir, owns)

    # The ready file, as attributes.
    @property
    def https_url(self):
        """The authority (`AZURE_AUTHORITY_HOST`)."""
        return self.ready["https_url"]

    @property
    def ca_cert_path(self):
        """The CA that signs the emulator's certificates."""
        return self.ready["ca_cert_path"]

    @property
    def key_vaults(self):
        """Vault name -> URL."""
        return dict(self.ready.get("key_vaults", {}))

    @property
    def arm_url(self):
        """The Resource Manager URL (`az cloud register --endpoint-resource-manager`)."""
        return self.ready.get("arm_url")

    def profile(self, name):
        """The environment variables of one flow (e.g. `client_secret`, `imds`), as a dict."""
        try:
            return dict(self.ready["profiles"][name])
        except KeyError:
            raise EmulatorError(f"no profile {name!r}; there are {sorted(self.ready['profiles'])}") from None

    def control(self, method, path, body=None):
        """Calls `/_emulator{path}`; returns the JSON answer. POSTs are JSON, as the control
        plane requires."""
        data = None
        headers = {}
        if method != "GET":
            data = json.dumps({} if body is None else body).encode()
            headers["content-type"] = "application/json"
        request = urllib.request.Request(f"{self.https_url}/_emulator{path}", data=data,
                                         headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, context=self._tls, timeout=10) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as e:
            raise EmulatorError(f"{method} {path}: {e.code} {e.read().decode()}") from None
        return json.loads(text) if text else None

    def requests(self):
        """The request log (secrets redacted)."""
        return self.control("GET", "/requests")

    def add_fault(self, spec):
        """Installs a fault in the `--fault` short form (e.g. `status@token,status=503,times=1`)."""
        return self.control("POST", "/faults", {"spec": spec})

    def clear_faults(self):
        self.control("DELETE", "/faults")

    def revoke(self, subject):
        """Revokes a principal for continuous access evaluation; returns the revocation time."""
        return self.control("POST", "/revoke", {"subject": subject})["revoked_at_epoch"]

    def pending_device_codes(self):
        """The user codes waiting for a user."""
        return [d["user_code"] for d in self.control("GET", "/device-codes")["device_codes"]]

    def approve_device_code(self, user_code, user):
        """Approves a device code as `user` (UPN or object id) would on the device login page."""
        return self.control("POST", "/device-codes/approve", {"user_code": user_code, "user": user})

    def reset(self):
        """Back to the starting seed; clears the log, faults, revocations and clock offset."""
        self.control("POST", "/reset")

    def stop(self):
        """Stops the emulator and removes its temporary state."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
        if self._owns_workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
