"""The layers of src/ kept by a machine (docs/ARCHITECTURE.md).

src/ has one folder a layer, lowest first: util, kernel, count, read, glue.
A file may include files of its own layer or of layers below it, never one
above; no module (a .c and its .h) may reach another module back through
its includes, however long the way round; only the glue includes collectd;
and a file named *_internal.h is its own module's alone.  Any breach fails
the test, naming the files.  Before looking at src/, the checker is run on
small trees that break each rule, so that it cannot silently pass.
Needs EP_SRC_DIR (make check sets it; else ../../src from here).
"""

import os
import re
import sys
import tempfile

sys.dont_write_bytecode = True

EXIT_PASS, EXIT_FAIL = 0, 1
LAYERS = ("util", "kernel", "count", "read", "glue")
GLUE = "glue"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(src):
    """Paths relative to src of every .c and .h below it."""
    found = []
    for folder, _, names in os.walk(src):
        for name in names:
            if name.endswith((".c", ".h")):
                found.append(os.path.relpath(os.path.join(folder, name), src))
    return sorted(found)


def module(path):
    return os.path.splitext(path)[0]


def layer_of(path):
    parts = path.split(os.sep)
    return parts[0] if len(parts) > 1 else None


def includes(src, path):
    with open(os.path.join(src, path)) as handle:
        return INCLUDE.findall(handle.read())


def cycles(graph):
    """Each set of modules that reach one another (Tarjan's strongly
    connected components of more than one module), as a path round it."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def connect(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append((path_round(graph, set(component)),
                              sorted(component)))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def path_round(graph, component):
    """A way from the component's first module back to it, inside it."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph.get(node, ())):
            if target == start:
                return paths[node] + [start]
            if target in component and target not in paths:
                paths[target] = paths[node] + [target]
                queue.append(target)
    return sorted(component)


def problems(src):
    """Every breach of the rules in the tree at src, as text."""
    found = []
    files = sources(src)
    known = set(files)
    graph = {}
    for path in files:
        layer = layer_of(path)
        if layer not in LAYERS:
            found.append("%s: not in a layer folder (%s)"
                         % (path, ", ".join(LAYERS)))
            continue
        for target in includes(src, path):
            if target.startswith("collectd/"):
                if layer != GLUE:
                    found.append("%s: includes collectd's %s; only %s/ may"
                                 % (path, target, GLUE))
                continue
            if target not in known:
                found.append("%s: includes %s, which is no file under src/ "
                             "(name it from src/: layer/file.h)"
                             % (path, target))
                continue
            target_layer = layer_of(target)
            if target_layer not in LAYERS:
                continue  # reported as that file's own problem
            if LAYERS.index(target_layer) > LAYERS.index(layer):
                found.append("%s: includes %s, up a layer (%s is above %s)"
                             % (path, target, target_layer, layer))
            base = os.path.basename(target)
            if (base.endswith("_internal.h")
                    and module(target)[:-len("_internal")] != module(path)):
                found.append("%s: includes %s, another module's internals"
                             % (path, target))
            if module(target) != module(path):
                graph.setdefault(module(path), set()).add(module(target))
    for cycle, members in cycles(graph):
        text = "include cycle: " + " -> ".join(cycle)
        if len(members) + 1 > len(cycle):
            text += " (all of %s reach one another)" % ", ".join(members)
        found.append(text)
    return found


def write_tree(root, files):
    for path, text in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as handle:
            handle.write(text)


def self_check():
    """The checker on trees that keep or break one rule each."""
    good = {
        "util/a.h": "",
        "kernel/b.h": '#include "util/a.h"\n',
        "kernel/b.c": '#include "kernel/b.h"\n#include <stdio.h>\n',
        "read/c_internal.h": "",
        "read/c.c": '#include "read/c_internal.h"\n#include "kernel/b.h"\n',
        "glue/d.c": '#include "collectd/core/daemon/plugin.h"\n'
                    '#include "read/c.h"\n',
        "read/c.h": '#include "kernel/b.h"\n',
    }
    cases = {
        "good": ({}, None),
        "up": ({"util/a.h": '#include "kernel/b.h"\n'}, "up a layer"),
        "cycle": ({"kernel/e.h": '#include "kernel/f.h"\n',
                   "kernel/f.h": "",
                   "kernel/f.c": '#include "kernel/e.h"\n'},
                  "include cycle: kernel/e -> kernel/f -> kernel/e"),
        "long cycle": ({"util/g.h": '#include "util/h.h"\n',
                        "util/h.h": '#include "util/i.h"\n',
                        "util/i.h": "",
                        "util/i.c": '#include "util/g.h"\n'},
                       "include cycle: util/g -> util/h -> util/i -> util/g"),
        "collectd": ({"read/x.c": '#include "collectd/core/daemon/plugin.h"\n'},
                     "only glue/ may"),
        "flat": ({"y.c": ""}, "not in a layer folder"),
        "unknown folder": ({"misc/z.c": ""}, "not in a layer folder"),
        "bare name": ({"read/w.c": '#include "a.h"\n'}, "no file under src/"),
        "internals": ({"read/v.c": '#include "read/c_internal.h"\n'},
                      "another module's internals"),
    }
    for name, (changes, expected) in cases.items():
        with tempfile.TemporaryDirectory() as root:
            tree = dict(good)
            tree.update(changes)
            write_tree(root, tree)
            got = problems(root)
        if expected is None and got:
            print("FAIL: self-check %s: expected no problem, got %r"
                  % (name, got))
            return False
        if expected is not None and not any(expected in p for p in got):
            print("FAIL: self-check %s: expected %r, got %r"
                  % (name, expected, got))
            return False
    return True


def main():
    if not self_check():
        return EXIT_FAIL
    src = os.environ.get("EP_SRC_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "src")
    files = sources(src)
    layers = {layer_of(path) for path in files}
    if not set(LAYERS) <= layers:
        print("FAIL: %s lacks layer folders: %s"
              % (src, ", ".join(sorted(set(LAYERS) - layers))))
        return EXIT_FAIL
    found = problems(src)
    print("checked %d files in %s: layers %s" % (len(files), src,
                                                 " < ".join(LAYERS)))
    for problem in found:
        print("FAIL: " + problem)
    return EXIT_FAIL if found else EXIT_PASS


if __name__ == "__main__":
    sys.exit(main())
