#!/usr/bin/env python3
"""Turns a Lua source file into a C header holding it as a byte array.

meson runs this at build time so the binary carries its Lua prelude and
needs no install path to find it.
"""
import sys

src, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(src, 'rb').read()
with open(out, 'w') as f:
    f.write('/* generated from %s; do not edit */\n' % src.split('/')[-1])
    f.write('static const char %s[] = {\n' % name)
    for i in range(0, len(data), 16):
        f.write(''.join('%d,' % b for b in data[i:i + 16]) + '\n')
    f.write('};\n')
    f.write('static const char %s_name[] = "=stelar/prelude.lua";\n' % name)
