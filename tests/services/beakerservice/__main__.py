"""`python -m tests.services.beakerservice [--workspace W] [--cluster C] [--secret NAME] -- COMMAND...`

Run COMMAND against a stand-in Beaker on loopback (its BEAKER_CONFIG and gRPC roots in the environment), then
print the experiments it created and the calls it served. For trying the Beaker backend by hand; nothing is
submitted anywhere.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path


def main(argv: list[str]) -> int:
    if importlib.util.find_spec("beaker") is None or importlib.util.find_spec("cryptography") is None:
        print(
            "the stand-in needs beaker-py and cryptography: pip install 'olmix[beaker]' cryptography", file=sys.stderr
        )
        return 1
    from tests.services.beakerservice import BeakerService

    own, command = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(prog="python -m tests.services.beakerservice")
    parser.add_argument("--workspace", action="append", default=[], help="create this workspace (org/name)")
    parser.add_argument("--cluster", action="append", default=[], help="create this cluster (org/name)")
    parser.add_argument("--secret", action="append", default=[], help="create this secret in every workspace")
    args = parser.parse_args(own)
    if not command:
        parser.print_usage(sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="beakerservice-") as folder, BeakerService(Path(folder)) as service:
        for workspace in args.workspace or ["ai2/olmix"]:
            service.add_workspace(workspace)
            for secret in args.secret:
                service.add_secret(workspace, secret)
        for cluster in args.cluster or ["ai2/jupiter"]:
            service.add_cluster(cluster)
        print(
            f"stand-in Beaker at {service.address} (gRPC {service.rpc_address}); running: {shlex.join(command)}",
            file=sys.stderr,
        )
        code = subprocess.run(command, env=service.subprocess_env()).returncode
        for experiment in service.experiments():
            print(
                f"experiment {experiment.author}/{experiment.name} ({experiment.id}): {experiment.state}",
                file=sys.stderr,
            )
        print(f"calls: {dict(sorted(service.calls.items()))}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
