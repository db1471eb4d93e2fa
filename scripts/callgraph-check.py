#!/usr/bin/env python3
"""callgraph-check.py - fails if the files of src/ call or include each other in a circle.

Every .c and .h of src/ is a node. Two kinds of edges:
  - includes: a file's `#include "..."` of a header of src/ (what `cc -MM` lists, transitively,
    is checked to be covered by these direct edges);
  - calls and data: the object files' symbol tables (`nm`): a symbol an object leaves undefined
    that another object of src/ defines is an edge to that object's .c.
So a backend that includes its interface's header (bus_local.c -> bus.h) while the interface's
.c names the backend's method table (bus.c -> bus_local.c) is no circle, but two .c files that
call each other, or headers that include each other, are.
The files that share a module-private header (net/net_internal.h, store/store_pg_int.h, any
*_int.h or *_internal.h) are one unit by design and count as one node. Any other strongly
connected set of more than one node is printed and fails.

usage: scripts/callgraph-check.py [OBJDIR]   (OBJDIR: where make put src/'s objects, build/asan)
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OBJDIR = sys.argv[1] if len(sys.argv) > 1 else 'build/asan'
def is_private(header):
    base = os.path.basename(header)
    return base.endswith('_int.h') or base.endswith('_internal.h')


def sources():
    out = []
    for d, _, files in os.walk(os.path.join(ROOT, 'src')):
        for f in files:
            if f.endswith('.c') and f != 'main.c':
                out.append(os.path.relpath(os.path.join(d, f), ROOT))
    return sorted(out)


def includes(src):
    cc = os.environ.get('CC', 'cc')
    # The Makefile passes its include flags (llhttp's header is unpacked under build/).
    inc = os.environ.get('CALLGRAPH_INC', '-Isrc -I/usr/include/postgresql').split()
    r = subprocess.run([cc, '-MM', *inc, '-D_GNU_SOURCE', src],
                       cwd=ROOT, capture_output=True, text=True, check=True)
    deps = r.stdout.replace('\\\n', ' ').split(':', 1)[1].split()
    return [d for d in deps if d.startswith('src/') and d.endswith('.h')]


def direct_includes(path):
    out = []
    d = os.path.dirname(path)
    for line in open(os.path.join(ROOT, path)):
        line = line.strip()
        if line.startswith('#include "'):
            name = line.split('"')[1]
            for cand in (os.path.join('src', name), os.path.join(d, name)):
                if os.path.exists(os.path.join(ROOT, cand)):
                    out.append(os.path.normpath(cand))
                    break
    return out


def symbols(src):
    obj = os.path.join(ROOT, OBJDIR, src[:-2] + '.o')
    if not os.path.exists(obj):
        sys.exit(f'callgraph-check: {obj} is missing: build first (make build/parley-asan)')
    r = subprocess.run(['nm', obj], capture_output=True, text=True, check=True)
    defined, undefined = set(), set()
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == 'U':
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in 'TDBRGSVW':
            defined.add(parts[2])
    return defined, undefined


def main():
    srcs = sources()
    headers = sorted({h for s in srcs for h in includes(s)})
    unit = {}
    for s in srcs:
        private = sorted(h for h in includes(s) if is_private(h))
        unit[s] = private[0][:-2] + '.*' if private else s
    for h in headers:
        unit[h] = h
    owner = {}
    syms = {}
    for s in srcs:
        d, u = symbols(s)
        syms[s] = u
        for name in d:
            owner[name] = s
    edges = {u: set() for u in unit.values()}
    why = {}
    for f in srcs + headers:
        for h in direct_includes(f):
            if unit.get(h, h) != unit[f]:
                edges[unit[f]].add(unit.get(h, h))
                edges.setdefault(unit.get(h, h), set())
                why.setdefault((unit[f], unit.get(h, h)), 'includes it')
    for s in srcs:
        for name in syms[s]:
            t = owner.get(name)
            if t and unit[t] != unit[s]:
                edges[unit[s]].add(unit[t])
                why.setdefault((unit[s], unit[t]), f'calls {name}')
    # Tarjan's strongly connected components.
    index, low, stack, on, comps, n = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.remove(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(comp)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    cycles = [sorted(c) for c in comps if len(c) > 1]
    for c in cycles:
        print('callgraph-check: these files depend on each other in a circle:')
        for a in c:
            for b in sorted(edges[a]):
                if b in c:
                    print(f'  {a} -> {b} ({why[(a, b)]})')
    if cycles:
        return 1
    print(f'callgraph-check: {len(edges)} files of src/ (those sharing a private header as one): '
          'no circle')
    return 0


if __name__ == '__main__':
    sys.exit(main())
