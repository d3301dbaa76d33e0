#!/usr/bin/env python3
"""Checks that keystore-server/ stays layered: a file may include headers
from its own folder and from folders strictly below its own, never from a
folder above it or beside it.  The order, top first:

    daemon, ctl  ->  ops, sandbox, catalogue  ->  store  ->  common  ->  proto

Usage: check_layers.py [SOURCE_ROOT]       check the tree (exit 1 on a violation)
       check_layers.py --self-test [ROOT]  also prove that an upward and a
                                           sideways include are caught
"""
import os
import re
import shutil
import sys
import tempfile

RANK = {'proto': 0, 'common': 1, 'store': 2, 'sandbox': 3, 'ops': 3, 'catalogue': 3, 'daemon': 4,
        'ctl': 4}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def violations(root):
    server = os.path.join(root, 'keystore-server')
    found = []
    for entry in sorted(os.listdir(server)):
        path = os.path.join(server, entry)
        if os.path.isfile(path) and entry.endswith(('.c', '.h')):
            found.append(f'keystore-server/{entry}: source file outside every layer folder')
        if not os.path.isdir(path):
            continue
        if entry not in RANK:
            found.append(f'keystore-server/{entry}/: folder has no place in the layer order '
                         f'(add it to RANK in tests/check_layers.py)')
            continue
        for name in sorted(os.listdir(path)):
            if not name.endswith(('.c', '.h')):
                continue
            rel = f'keystore-server/{entry}/{name}'
            with open(os.path.join(path, name), encoding='utf-8') as f:
                text = f.read()
            for header in INCLUDE.findall(text):
                problem = check(root, entry, header)
                if problem:
                    found.append(f'{rel}: #include "{header}": {problem}')
    return found


def check(root, folder, header):
    if '/' in header:
        layer = header.split('/', 1)[0]
        if layer not in RANK:
            return f'"{layer}" is not a layer'
        if not os.path.exists(os.path.join(root, 'keystore-server', header)):
            return 'no such header'
        if layer == folder:
            return None
        if RANK[layer] > RANK[folder]:
            return f'{folder}/ may not use {layer}/, a layer above it'
        if RANK[layer] == RANK[folder]:
            return f'{folder}/ may not use {layer}/, a layer beside it'
        return None
    if os.path.exists(os.path.join(root, 'keystore-server', folder, header)):
        return None
    if header.endswith('.pb-c.h') or os.path.exists(os.path.join(root, 'proto', header)):
        return None   # proto/, the bottom layer
    return f'not in {folder}/ nor proto/: name its folder ("layer/{header}")'


def self_test(root):
    """An upward and a sideways include in a copy of the tree must be caught."""
    cases = [('store/keytable.c', '#include "ops/op.h"\n', 'above'),
             ('ops/sign.c', '#include "sandbox/harden.h"\n', 'beside'),
             ('common/log.c', '#include "keytable.h"\n', 'not in common/')]
    for target, line, expect in cases:
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(os.path.join(root, 'keystore-server'),
                            os.path.join(tmp, 'keystore-server'))
            shutil.copytree(os.path.join(root, 'proto'), os.path.join(tmp, 'proto'))
            with open(os.path.join(tmp, 'keystore-server', target), 'a') as f:
                f.write(line)
            got = violations(tmp)
            if not any(expect in v for v in got):
                print(f'FAIL: self-test: {line.strip()} added to {target} was not caught')
                return False
            print(f'ok: self-test: {line.strip()} in {target} is caught: {got[0]}')
    return True


def main():
    args = [a for a in sys.argv[1:] if a != '--self-test']
    root = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
    found = violations(root)
    for v in found:
        print('FAIL:', v)
    if not found:
        print('ok: every include in keystore-server/ goes to its own layer or one below')
    ok = not found
    if '--self-test' in sys.argv[1:]:
        ok = self_test(root) and ok
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
