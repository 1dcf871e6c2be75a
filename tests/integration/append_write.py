#!/usr/bin/env python3
"""append_write.py: one write(2) of whole audit lines to audit.log from a buffer at a chosen
offset in its page, for the append-limit tests.

usage: append_write.py LOG SIZE OFFSET [good|badlast|issue]
  good     SIZE bytes of valid lines (1024 bytes each; the last one takes the remainder)
  badlast  the same, with the last line invalid
  issue    1,024 valid lines of 1024 bytes, then one invalid line (SIZE is ignored)
Prints "ok N" (bytes written) or the errno's name, e.g. "EFBIG".
"""
import errno
import mmap
import os
import sys

LINE = 1024
BASE = b'{"action":"fill","status":"success","message":""}\n'


def line(size, bad=False):
    """A line of exactly size bytes, newline included."""
    text = BASE[:-3] + b"x" * (size - len(BASE)) + b'"}\n'
    assert len(text) == size
    return text.replace(b'"fill"', b'"FILL"') if bad else text


def lines(size, bad_last):
    n, rem = divmod(size, LINE)
    sizes = [LINE] * n
    if rem:
        if n:
            sizes[-1] += rem
        else:
            sizes = [rem]
    out = [line(s) for s in sizes[:-1]]
    out.append(line(sizes[-1], bad_last))
    return b"".join(out)


def main():
    path, size, off = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    kind = sys.argv[4] if len(sys.argv) > 4 else "good"
    if kind == "issue":
        data = lines(1024 * LINE, False) + line(100, True)
    else:
        data = lines(size, kind == "badlast")
    buf = mmap.mmap(-1, len(data) + 2 * mmap.PAGESIZE)
    buf[off:off + len(data)] = data
    view = memoryview(buf)[off:off + len(data)]
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        print("ok %d" % os.write(fd, view))
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)))
    finally:
        os.close(fd)
        view.release()


if __name__ == "__main__":
    main()
