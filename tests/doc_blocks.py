#!/usr/bin/env python3
"""doc_blocks.py DOC.md: turn a document's command blocks into one bash script.

Every fenced block marked ```sh (or ```bash) is run, in order, as written.
HTML comments just above a block (invisible on a rendered page) say how:

  <!-- doc-test: skip: REASON -->        not run here; the reason is printed
  <!-- doc-test: setup: COMMAND -->      run COMMAND first (fixtures the text
                                         takes for granted, e.g. a file to sign)
  <!-- doc-test: file: PATH -->          the block (any language: ini, text)
                                         is a file the reader writes: write it

A command that serves until stopped (`keystored -c ...`, `openssl s_server
...`) is started in the background by doc_serve (tests/test_docs.sh), which
waits until it is ready and stops it when the document ends.  The script
prints "doc-block FILE:LINE" before each block, so a failure names the
block.  A document whose first line is <!-- doc-test: none: REASON --> has
nothing to run (say why)."""
import re
import shlex
import sys

FENCE = re.compile(r'^```\s*([A-Za-z0-9_+-]*)\s*$')
NOTE = re.compile(r'^<!--\s*doc-test:\s*(skip|setup|file|none):?\s*(.*?)\s*-->\s*$')
SERVES = re.compile(r'^\s*(keystored\s+(-c|--config)\b|openssl\s+s_server\b)')


def blocks(path):
    """Yield (line number, language, text, notes) for each fenced block."""
    lines = open(path, encoding='utf-8').read().split('\n')
    notes = []
    i = 0
    while i < len(lines):
        m = NOTE.match(lines[i])
        if m:
            notes.append((m.group(1), m.group(2)))
            i += 1
            continue
        m = FENCE.match(lines[i])
        if m and not lines[i].startswith('````'):
            lang, start, body = m.group(1), i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith('```'):
                body.append(lines[i])
                i += 1
            yield start, lang, '\n'.join(body), notes
            notes = []
        elif lines[i].strip():
            notes = []          # a note belongs only to the block right after it
        i += 1


def commands(text):
    """Join backslash continuations: one entry per shell command line."""
    out, cur = [], ''
    for line in text.split('\n'):
        if line.endswith('\\'):
            cur += line[:-1] + ' '
            continue
        out.append(cur + line)
        cur = ''
    if cur:
        out.append(cur)
    return out


def main():
    path = sys.argv[1]
    name = sys.argv[2] if len(sys.argv) > 2 else path
    first = open(path, encoding='utf-8').readline()
    m = NOTE.match(first.rstrip('\n'))
    if m and m.group(1) == 'none':
        if not m.group(2):
            sys.exit(f'{name}: doc-test: none needs a reason')
        print(f'echo "doc-none {name}: {m.group(2)}"')
        return
    print('set -euo pipefail')
    ran = 0
    for line, lang, text, notes in blocks(path):
        where = f'{name}:{line}'
        kinds = [k for k, _ in notes]
        if 'skip' in kinds:
            reason = [v for k, v in notes if k == 'skip'][0]
            if not reason:
                sys.exit(f'{where}: doc-test: skip needs a reason')
            print(f'echo {shlex.quote(f"doc-skip {where}: {reason}")}')
            continue
        if 'file' in kinds:
            target = [v for k, v in notes if k == 'file'][0]
            print(f'echo {shlex.quote(f"doc-block {where} (writes {target})")}')
            print(f'mkdir -p "$(dirname {shlex.quote(target)})"')
            print(f"cat > {shlex.quote(target)} <<'DOC_TEST_EOF'\n{text}\nDOC_TEST_EOF")
            ran += 1
            continue
        if lang not in ('sh', 'bash'):
            continue
        print(f'echo {shlex.quote(f"doc-block {where}")}')
        for kind, value in notes:
            if kind == 'setup':
                print(value)
        for cmd in commands(text):
            if SERVES.match(cmd):
                print(f'doc_serve {shlex.quote(where)} {shlex.quote(cmd.strip())}')
            else:
                print(cmd)
        ran += 1
    print(f'echo "doc-done {name}: {ran} blocks"')


if __name__ == '__main__':
    main()
