"""The plugin never shells out: no call in src/ to popen, system, the exec
family, fork, vfork, clone or posix_spawn.  Comments and string literals are
blanked before matching, and the matcher checks itself on samples first so
that it cannot silently match nothing.  Needs EP_SRC_DIR (make check sets
it)."""

import os
import re
import sys

EXIT_PASS, EXIT_FAIL = 0, 1

FORBIDDEN = re.compile(
    r"\b(popen|system|execl|execlp|execle|execv|execvp|execvpe|execve|"
    r"execveat|fexecve|fork|vfork|clone|clone3|posix_spawn|posix_spawnp)"
    r"\s*\(")
# Comments, then string and character literals (with escapes).
LEXEMES = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|'
                     r"'(?:\\.|[^'\\\n])*'", re.S)


def blank(match):
    """Keeps newlines so that line numbers survive."""
    return re.sub(r"[^\n]", " ", match.group(0))


def forbidden_calls(text):
    code = LEXEMES.sub(blank, text)
    return [(code.count("\n", 0, m.start()) + 1, m.group(1))
            for m in FORBIDDEN.finditer(code)]


def self_check():
    samples = {
        'FILE *f = popen("ss -tan", "r");': ["popen"],
        "if (fork () == 0) execvp(argv[0], argv);": ["fork", "execvp"],
        "int rc = system(cmd);": ["system"],
        "/* never popen() or system() */ x = 1;": [],
        '// fork() here would be wrong': [],
        'log("calling system(%s)");': [],
        "subsystem(x); my_fork(y); forked(z);": [],
    }
    for text, expected in samples.items():
        got = [name for _, name in forbidden_calls(text)]
        if got != expected:
            print("FAIL: matcher on %r: expected %r, got %r"
                  % (text, expected, got))
            return False
    return True


def main():
    if not self_check():
        return EXIT_FAIL
    src = os.environ.get("EP_SRC_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "src")
    files = sorted(os.path.relpath(os.path.join(folder, name), src)
                   for folder, _, names in os.walk(src) for name in names
                   if name.endswith((".c", ".h")))
    if not any(name.endswith(".c") for name in files):
        print("FAIL: no C sources in %s" % src)
        return EXIT_FAIL
    found = []
    for name in files:
        with open(os.path.join(src, name)) as handle:
            for line, call in forbidden_calls(handle.read()):
                found.append("%s:%d: %s()" % (name, line, call))
    print("checked %d files in %s" % (len(files), src))
    for entry in found:
        print("FAIL: forbidden call " + entry)
    return EXIT_FAIL if found else EXIT_PASS


if __name__ == "__main__":
    sys.exit(main())
