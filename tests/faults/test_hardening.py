"""The built plugin carries the hardening configure chose, per readelf.

EP_HARDENING_FLAGS (from configure, via make check) lists the flags the
toolchain accepted.  For each, the matching property of the .so must hold
(a property without its flag is only reported: Debian's ld makes RELRO
even unasked):
  -Wl,-z,relro        a GNU_RELRO program header
  -Wl,-z,now          BIND_NOW in FLAGS, or NOW in FLAGS_1
  -fstack-protector-strong   __stack_chk_fail imported (the plugin has
                      functions with local char arrays)
  -D_FORTIFY_SOURCE=2 __snprintf_chk imported (the plugin snprintf()s into
                      local arrays of known size)
Whatever the flags: the only symbol the plugin defines in its dynamic
symbol table is module_register (libtool's -export-symbols-regex).
A build without any hardening (--disable-hardening) is a SKIP.
"""

import os
import re
import shutil
import subprocess
import sys

EXIT_PASS, EXIT_FAIL, EXIT_SKIP = 0, 1, 77


def readelf(*args):
    return subprocess.run(["readelf", "-W"] + list(args), check=True,
                          stdout=subprocess.PIPE, text=True).stdout


def dynamic_symbols(so_path):
    """{(name, defined)} of the .dynsym table, versions stripped."""
    symbols = set()
    for line in readelf("--dyn-syms", so_path).splitlines():
        fields = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(fields) < 8 or not fields[0].endswith(":") or \
                not fields[0][:-1].isdigit():
            continue
        name = fields[7].split("@")[0]
        if name:
            symbols.add((name, fields[6] != "UND"))
    return symbols


def main():
    so_path = os.environ.get("EP_PLUGIN_SO")
    if not so_path or not os.path.isfile(so_path):
        print("FAIL: EP_PLUGIN_SO=%r is not a file" % so_path)
        return EXIT_FAIL
    if shutil.which("readelf") is None:
        print("SKIP: readelf (binutils) not installed")
        return EXIT_SKIP
    flags = os.environ.get("EP_HARDENING_FLAGS", "").split()

    headers = readelf("--program-headers", so_path)
    dynamic = readelf("--dynamic", so_path)
    symbols = dynamic_symbols(so_path)
    imported = {name for name, defined in symbols if not defined}
    exported = sorted(name for name, defined in symbols if defined)

    bind_now = bool(re.search(r"\(FLAGS\)\s.*\bBIND_NOW\b", dynamic) or
                    re.search(r"\(FLAGS_1\)\s.*\bNOW\b", dynamic))
    checks = [
        ("-Wl,-z,relro", "GNU_RELRO program header",
         re.search(r"^\s*GNU_RELRO\s", headers, re.M) is not None),
        ("-Wl,-z,now", "BIND_NOW in the dynamic section", bind_now),
        ("-fstack-protector-strong", "__stack_chk_fail imported",
         "__stack_chk_fail" in imported),
        ("-D_FORTIFY_SOURCE=2", "__snprintf_chk imported",
         "__snprintf_chk" in imported),
    ]
    failures = []
    for flag, what, present in checks:
        wanted = flag in flags
        print("%-26s configured=%-5s %s: %s" % (flag, wanted, what, present))
        if wanted and not present:
            failures.append("%s: expected %s, got %s" % (what, wanted,
                                                          present))
    print("exported: %s" % exported)
    if exported != ["module_register"]:
        failures.append("exported symbols: expected ['module_register'], "
                        "got %r" % exported)
    if failures:
        for failure in failures:
            print("FAIL: " + failure)
        return EXIT_FAIL
    if not flags:
        print("SKIP: configured without hardening (--disable-hardening or a "
              "toolchain that accepts none of the flags)")
        return EXIT_SKIP
    return EXIT_PASS


if __name__ == "__main__":
    sys.exit(main())
