"""promtool on the shipped Prometheus files: `check config` (which also
checks the rule file it names), `check rules`, and `test rules` (every alert
firing and not firing).  SKIP (77) when promtool is missing."""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED_DIR = os.path.join(HERE, "..", "..", "contrib", "prometheus")
PROMTOOL = os.environ.get("PROMTOOL_BIN") or shutil.which("promtool")

COMMANDS = (
    ["check", "config", "prometheus.yml"],
    ["check", "rules", "ephemeral_ports.rules.yml"],
    ["test", "rules", "ephemeral_ports.rules.test.yml"],
)


def main():
    if not PROMTOOL:
        print("SKIP: promtool not found (Debian package prometheus)")
        return 77
    status = 0
    for command in COMMANDS:
        # Relative names: the files name each other relative to their dir.
        result = subprocess.run([PROMTOOL] + command, cwd=SHIPPED_DIR,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        print("$ promtool %s\n%s" % (" ".join(command), result.stdout))
        if result.returncode != 0:
            print("FAIL: promtool %s exited %d" % (" ".join(command),
                                                   result.returncode))
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
