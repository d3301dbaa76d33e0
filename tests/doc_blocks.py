#!/usr/bin/env python3
"""doc_blocks.py DOC: turn a document's command blocks into one bash script.

DOC is Markdown (README.md, docs/*.md) or a man page (docs/man/*.[1-8]).

Markdown: every fenced block marked ```sh (or ```bash) is run, in order, as
written.  HTML comments just above a block (invisible on a rendered page)
say how:

  <!-- doc-test: skip: REASON -->        not run here; the reason is printed
  <!-- doc-test: setup: COMMAND -->      run COMMAND first (fixtures the text
                                         takes for granted, e.g. a file to sign)
  <!-- doc-test: check: COMMAND -->      run COMMAND after the block: what the
                                         text says the block prints or does
  <!-- doc-test: file: PATH -->          the block (any language: ini, text)
                                         is a file the reader writes: write it
  <!-- doc-test: fill: TEXT <- COMMAND --> TEXT in the block is a placeholder
                                         (`...`, `<the key printed>`): put
                                         COMMAND's output there, as the
                                         reader pastes what it stands for

Man pages: the .nf/.fi blocks of the EXAMPLES section are the command
blocks; the same notes are roff comments on the lines just above the .nf
(`.\\" doc-test: skip: REASON`), and mark a block elsewhere too.  The roff
escapes are undone (\\- is -, \\e is a backslash) so the text is what a
reader of `man` types.

An untyped block (``` alone, or a .nf outside EXAMPLES) that reads like
commands (a line starting with keystorectl, openssl, systemctl ...) and
carries no note is an error: mark it ```sh, or say skip or file, so that
nothing a reader would type escapes the test.

A command that serves until stopped (`keystored -c ...`, `openssl s_server
...`, `etcd --name ...`) is started in the background by doc_serve (tests/doc_lib.sh), which
waits until it is ready and stops it when the document ends (an s_server
when its block ends).  The script
prints "doc-block FILE:LINE" before each block, so a failure names the
block, and at the end "doc-done FILE: N blocks ran, M skipped".  A document
whose first line is <!-- doc-test: none: REASON --> (man: .\\" doc-test:
none: REASON) has nothing to run (say why)."""
import re
import shlex
import sys

FENCE = re.compile(r'^( *)```\s*([A-Za-z0-9_+-]*)\s*$')   # indented inside a list too
NOTE_MD = re.compile(r'^\s*<!--\s*doc-test:\s*(skip|setup|check|file|fill|none):?\s*(.*?)\s*-->\s*$')
NOTE_ROFF = re.compile(r'^\.\\"\s*doc-test:\s*(skip|setup|check|file|fill|none):?\s*(.*?)\s*$')
SERVES = re.compile(r'^\s*(keystored\s+(-c|--config)\b|openssl\s+s_server\b|etcd\s+--name\b)')
# what a reader would type: a block of these is a command block
COMMANDISH = re.compile(
    r'^\s*(sudo\s+)?(\S+=\S*\s+)*(keystorectl|keystored|openssl|systemctl|journalctl|meson|'
    r'usermod|install|chown|chmod|cp|mv|rm|tar|export|cd|mkdir|curl|nginx|apachectl|'
    r'haproxy|tests/\S+|\./\S+)(\s|$)')


def roff_text(line):
    """What man(1) shows for a line inside .nf: the escapes a command uses."""
    line = re.sub(r'\\f[BIRP]', '', line)
    line = line.replace('\\(lq', '"').replace('\\(rq', '"')
    line = line.replace('\\-', '-').replace('\\&', '').replace('\\e', '\\')
    return line


def md_blocks(lines):
    """Yield (line number, language, text, notes) for each fenced block."""
    notes = []
    i = 0
    while i < len(lines):
        m = NOTE_MD.match(lines[i])
        if m:
            notes.append((m.group(1), m.group(2)))
            i += 1
            continue
        m = FENCE.match(lines[i])
        if m and not lines[i].lstrip().startswith('````'):
            indent, lang, start, body = len(m.group(1)), m.group(2), i + 1, []
            i += 1
            while i < len(lines) and not lines[i].lstrip().startswith('```'):
                body.append(lines[i][indent:] if lines[i][:indent].strip() == '' else lines[i])
                i += 1
            yield start, lang, '\n'.join(body), notes
            notes = []
        elif lines[i].strip():
            notes = []          # a note belongs only to the block right after it
        i += 1


def roff_blocks(lines):
    """The same for a man page: .nf/.fi blocks; those of EXAMPLES are sh."""
    notes, section = [], ''
    i = 0
    while i < len(lines):
        line = lines[i]
        m = NOTE_ROFF.match(line)
        if m:
            notes.append((m.group(1), m.group(2)))
        elif line.startswith('.SH'):
            section = line[3:].strip().strip('"')
            notes = []
        elif line.strip() == '.nf':
            start, body = i + 2, []
            i += 1
            while i < len(lines) and lines[i].strip() != '.fi':
                if not lines[i].startswith('.'):      # requests (.B, .RE) are not text
                    body.append(roff_text(lines[i]))
                i += 1
            yield start, 'sh' if section == 'EXAMPLES' else '', '\n'.join(body), notes
            notes = []
        elif not line.startswith('.'):
            notes = []          # text between a note and its block: the note is lost
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


def setups(notes, where):
    """Print the setup notes; one that fails stops the document there."""
    for kind, value in notes:
        if kind == 'setup':
            msg = shlex.quote(f'doc-test: {where}: the setup "{value}" failed')
            print(f'if ! {{ {value}\n}}; then echo {msg} >&2; exit 1; fi')


def fills(notes, where):
    """The fill notes: (placeholder, variable, command) each."""
    out = []
    for kind, value in notes:
        if kind == 'fill':
            text, sep, cmd = value.partition(' <- ')
            if not sep or not text or not cmd:
                sys.exit(f'{where}: doc-test: fill needs TEXT <- COMMAND')
            out.append((text, f'DOC_FILL_{len(out)}', cmd))
    return out


def main():
    path = sys.argv[1]
    name = sys.argv[2] if len(sys.argv) > 2 else path
    lines = open(path, encoding='utf-8').read().split('\n')
    man = re.search(r'\.[1-8]$', path) is not None
    m = (NOTE_ROFF if man else NOTE_MD).match(lines[0] if not man or not lines[0].startswith('.TH')
                                              else (lines[1] if len(lines) > 1 else ''))
    if m and m.group(1) == 'none':
        if not m.group(2):
            sys.exit(f'{name}: doc-test: none needs a reason')
        print(f'echo {shlex.quote(f"doc-none {name}: {m.group(2)}")}')
        return
    print('set -euo pipefail')
    ran = skipped = 0
    errors = []
    for line, lang, text, notes in (roff_blocks if man else md_blocks)(lines):
        where = f'{name}:{line}'
        kinds = [k for k, _ in notes]
        if 'skip' in kinds:
            reason = [v for k, v in notes if k == 'skip'][0]
            if not reason:
                sys.exit(f'{where}: doc-test: skip needs a reason')
            print(f'echo {shlex.quote(f"doc-skip {where}: {reason}")}')
            skipped += 1
            continue
        if 'file' in kinds:
            target = [v for k, v in notes if k == 'file'][0]
            print(f'echo {shlex.quote(f"doc-block {where} (writes {target})")}')
            setups(notes, where)
            print(f'mkdir -p "$(dirname {shlex.quote(target)})"')
            print(f"cat > {shlex.quote(target)} <<'DOC_TEST_EOF'\n{text}\nDOC_TEST_EOF")
            for ph, var, cmd in fills(notes, where):
                if ph not in text:
                    sys.exit(f'{where}: doc-test: fill: {ph!r} is not in the block')
                print(f'doc_fill {shlex.quote(target)} {shlex.quote(ph)} "$({cmd})"')
            ran += 1
            continue
        if lang not in ('sh', 'bash'):
            if lang == '' and any(COMMANDISH.match(c) for c in commands(text)):
                errors.append(f'{where}: an untyped block that reads like commands: mark it '
                              f'as sh (it then runs), or doc-test: skip: REASON, or file: PATH')
            continue
        print(f'echo {shlex.quote(f"doc-block {where}")}')
        setups(notes, where)
        for ph, var, cmd in fills(notes, where):
            if ph not in text:
                sys.exit(f'{where}: doc-test: fill: {ph!r} is not in the block')
            print(f'{var}=$({cmd})')
            text = text.replace(ph, '"$' + var + '"')
        for cmd in commands(text):
            if SERVES.match(cmd):
                # doc_serve puts it in the background anyway (`keystored ... &`)
                cmd = re.sub(r'\s*&\s*(#.*)?$', '', cmd.strip())
                print(f'doc_serve {shlex.quote(where)} {shlex.quote(cmd)}')
            else:
                print(cmd)
        print('doc_block_end')
        for kind, value in notes:
            if kind == 'check':
                msg = shlex.quote(f'doc-test: {where}: what the text says did not happen: {value}')
                print(f'if ! {{ {value}\n}}; then echo {msg} >&2; exit 1; fi')
        ran += 1
    if errors:
        sys.exit('\n'.join(errors))
    print(f'echo "doc-done {name}: {ran} blocks ran, {skipped} skipped"')


if __name__ == '__main__':
    main()
