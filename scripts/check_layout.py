#!/usr/bin/env python3
"""check_layout.py: the layout rules the build alone cannot enforce.

  scripts/check_layout.py [BUILD_DIR]

1. No call cycles between .c files of one library (from the objects' nm).
2. Every function a public header declares is named after the header:
   dm_<header>_..., where <header> is the file name without .h; private
   headers (*_priv.h, *_int.h) declare dm_<module>__... helpers.
3. Files stay under DM_FILE_LINES lines and functions under DM_FUNC_LINES.
4. Every #include of a project header names its folder ("catalog/catalog.h")
   and none climbs with "../"; only a test's or a tool's own local header
   (one beside it, or tests/unit/fixture.h) is included by its bare name.
Exits 1 and names every breach. The upward #include rule is the build's:
each folder's library sees only the folders it links (cmake/dm_library.cmake).
"""
import collections, glob, os, re, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DM_FILE_LINES = 800
DM_FUNC_LINES = 100
SRC_DIRS = ['base', 'storage', 'node', 'tools']
bad = []


def sources(ext):
    out = []
    for d in SRC_DIRS:
        out += glob.glob(os.path.join(ROOT, d, '**', '*.' + ext), recursive=True)
    return sorted(out)


def rel(p):
    return os.path.relpath(p, ROOT)


def check_cycles(build):
    objs = [o for o in glob.glob(os.path.join(build, '**', '*.c.o'), recursive=True)
            if '/tests/' not in o and '/fuzz/' not in o]
    libs = collections.defaultdict(list)
    for o in objs:
        m = re.search(r'/CMakeFiles/([^/]+)\.dir/', o)
        if m:
            libs[m.group(1)].append(o)
    for lib, files in libs.items():
        defs, uses = {}, collections.defaultdict(set)
        for o in files:
            name = os.path.basename(o)[:-2]
            out = subprocess.run(['nm', o], capture_output=True, text=True).stdout
            for line in out.splitlines():
                p = line.split()
                if len(p) == 3 and p[1] in 'TDRB':
                    defs[p[2]] = name
                elif len(p) == 2 and p[0] == 'U':
                    uses[name].add(p[1])
        g = {f: {defs[s] for s in us if s in defs and defs[s] != f} for f, us in uses.items()}
        index, low, stack, on, n = {}, {}, [], set(), [0]

        def visit(v):
            index[v] = low[v] = n[0]
            n[0] += 1
            stack.append(v)
            on.add(v)
            for w in g.get(v, ()):
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    bad.append('%s: call cycle between %s' % (lib, ' '.join(sorted(comp))))
        for v in list(g):
            if v not in index:
                visit(v)


COMMENT = re.compile(r'/\*.*?\*/|//[^\n]*', re.S)


# A function declared at file scope: the first identifier followed by '('
# on a line that starts a declaration (comments blanked out first, so a
# function that is not dm_-prefixed is caught too).
DECL = re.compile(r'^(?!typedef\b|#)(?:DM_NODISCARD\s+)?(?:extern\s+)?(?:static\s+inline\s+)?'
                  r'[A-Za-z_][\w\s\*]*?\b([A-Za-z_]\w*)\s*\(', re.M)


def blank_comments(text):
    """text with every comment replaced by spaces (line numbers kept)."""
    return COMMENT.sub(lambda m: re.sub(r'[^\n]', ' ', m.group(0)), text)


def check_names():
    for h in sources('h'):
        base = os.path.basename(h)[:-2]
        text = blank_comments(open(h).read())
        private = base.endswith('_priv') or base.endswith('_int')
        module = re.sub(r'_(priv|int)$', '', base)
        for m in DECL.finditer(text):
            name = m.group(1)
            line = text.count('\n', 0, m.start()) + 1
            if private:
                ok = name.startswith('dm_%s__' % module)
            else:
                ok = name.startswith('dm_%s_' % base) or name == 'dm_' + base
            if not ok:
                bad.append('%s:%d: %s is not named after its header (%s)' %
                           (rel(h), line, name, 'dm_%s__' % module if private else 'dm_%s_' % base))


FUNC_NAME = re.compile(r'\b([A-Za-z_]\w*)\s*\(')


def function_name(lines, brace):
    """The name of the function whose body opens with the lone '{' at
    lines[brace], from its declarator: the lines above it back to a blank
    line, a ';', a '}' or a preprocessor line. None if that text declares
    no function (a file-scope initializer)."""
    j = brace - 1
    while j >= 0:
        l = lines[j].rstrip()
        if not l or l.startswith('#') or l.endswith((';', '}')) or l.endswith('*/'):
            break
        j -= 1
    head = COMMENT.sub(' ', '\n'.join(lines[j + 1:brace]))
    head = re.sub(r'\b(DM_NODISCARD|DM_PRINTF\s*\([^)]*\)|__attribute__\s*\(\(.*?\)\))', ' ', head)
    m = FUNC_NAME.search(head)
    return m.group(1) if m else None


def check_sizes():
    for f in sources('c') + sources('h'):
        text = open(f).read()
        lines = text.split('\n')
        nlines = text.count('\n') + (0 if text.endswith('\n') or not text else 1)
        if nlines > DM_FILE_LINES:
            bad.append('%s: %d lines (at most %d)' % (rel(f), nlines, DM_FILE_LINES))
        if not f.endswith('.c'):
            continue
        # House style: a function body opens with '{' alone in column 0 and
        # closes with '}' alone in column 0; nothing else does.
        start = name = None
        for i, l in enumerate(lines):
            l = l.rstrip()
            if l == '{' and start is None:
                start, name = i, function_name(lines, i)
            elif l == '}' and start is not None:
                if name and i - start > DM_FUNC_LINES:
                    bad.append('%s:%d: %s is %d lines (at most %d)' %
                               (rel(f), start, name, i - start, DM_FUNC_LINES))
                start = None


INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
INCLUDE_DIRS = SRC_DIRS + ['tests']
# Folders whose headers are the libraries' (included as "folder/x.h").
LIB_ROOTS = ['base', 'storage', 'node', 'tools/cli']


def check_includes():
    project = set()
    for d in LIB_ROOTS:
        project |= {os.path.basename(h)
                    for h in glob.glob(os.path.join(ROOT, d, '**', '*.h'), recursive=True)}
    files = []
    for d in INCLUDE_DIRS:
        for ext in ('c', 'h'):
            files += glob.glob(os.path.join(ROOT, d, '**', '*.' + ext), recursive=True)
    unit = os.path.join(ROOT, 'tests', 'unit')
    for f in sorted(files):
        text = open(f, errors='replace').read()
        local_ok = rel(f).startswith(('tests' + os.sep, 'tools' + os.sep))
        for m in INCLUDE.finditer(text):
            inc = m.group(1)
            line = text.count('\n', 0, m.start()) + 1
            where = '%s:%d: #include "%s"' % (rel(f), line, inc)
            if '../' in inc or inc.startswith('./'):
                bad.append('%s climbs folders; name the folder instead' % where)
            elif '/' not in inc:
                here = os.path.dirname(f)
                local = local_ok and inc not in project and (
                    os.path.exists(os.path.join(here, inc)) or
                    os.path.exists(os.path.join(unit, inc)))
                if not local:
                    bad.append('%s does not name its folder ("<folder>/%s")' % (where, inc))


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, 'build')
    if os.path.isdir(build):
        check_cycles(build)
    else:
        bad.append('%s: no build directory; build first to check call cycles' % build)
    check_names()
    check_sizes()
    check_includes()
    for b in bad:
        print(b)
    print('check_layout: %d breach(es)' % len(bad), file=sys.stderr)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
