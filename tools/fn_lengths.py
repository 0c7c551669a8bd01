#!/usr/bin/env python3
"""Function lengths in each crate's src/, tests excluded.

Counts the lines of every `fn` from its signature to its closing brace, skipping
`#[cfg(test)]` modules and files that are only compiled for tests. Prints, per crate,
the number of functions, the median, the 90th percentile and the longest; with --over N,
lists every function longer than N lines.

    python3 tools/fn_lengths.py [--over 60] [CRATE_DIR ...]
"""
import re
import sys
from pathlib import Path

FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"C\"\s+)?fn\s+(\w+)")


def strip_strings(line):
    line = re.sub(r'r#*"[^"]*"#*', '""', line)
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split("//")[0]


def functions(path):
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    out = []
    i = 0
    skip_test = False
    while i < len(lines):
        line = lines[i]
        if re.match(r"^\s*#\[cfg\(test\)\]", line):
            # skip the next item (a module or function) entirely
            j = i + 1
            depth = 0
            started = False
            while j < len(lines):
                code = strip_strings(lines[j])
                depth += code.count("{") - code.count("}")
                if "{" in code:
                    started = True
                if started and depth <= 0:
                    break
                if not started and code.rstrip().endswith(";"):
                    break
                j += 1
            i = j + 1
            continue
        m = FN.match(line)
        if m:
            name = m.group(7)
            depth = 0
            started = False
            j = i
            while j < len(lines):
                code = strip_strings(lines[j])
                if not started and ";" in code and "{" not in code:
                    break  # a declaration without a body
                depth += code.count("{") - code.count("}")
                if "{" in code:
                    started = True
                if started and depth <= 0:
                    break
                j += 1
            if started:
                out.append((j - i + 1, f"{path}:{i + 1} {name}"))
                # nested fns are counted too: continue inside the body
        i += 1
    return out


def main(argv):
    over = None
    if "--over" in argv:
        k = argv.index("--over")
        over = int(argv[k + 1])
        argv = argv[:k] + argv[k + 2:]
    crates = argv or ["identity", "emulator", "fake-cli", "conformance"]
    worst = []
    for crate in crates:
        lengths = []
        for path in sorted(Path(crate, "src").rglob("*.rs")):
            if path.name == "fuzz.rs" or path.name == "tests.rs":
                continue
            for n, where in functions(path):
                lengths.append(n)
                if over is not None and n > over:
                    worst.append((n, where))
        if not lengths:
            continue
        lengths.sort()
        p = lambda q: lengths[min(len(lengths) - 1, int(round(q * (len(lengths) - 1))))]
        print(f"{crate:12} fns {len(lengths):5}  median {p(0.5):3}  p90 {p(0.9):3}  max {lengths[-1]:4}")
    for n, where in sorted(worst, reverse=True):
        print(f"  {n:4} {where}")


if __name__ == "__main__":
    main(sys.argv[1:])
