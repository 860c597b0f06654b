"""Fetch libmesos 1.11.0 from PyPI and make it loadable on Debian 12 (used by install-mesos.sh).

Mesos has no package in the registries here, but the PyPI bdist ``mesos.scheduler``
1.11.0.linux-x86_64 carries all of libmesos in its ``_scheduler.so``. The prebuilt bundle holds
every binary except that library, so installing means: download the bdist through pip's
configured index (checking the sha256 the index publishes and the one we know), pull the ``.so``
out, and rename one ELF version requirement: it was linked on Ubuntu 16.04, whose libcurl versions
its symbols ``CURL_OPENSSL_3``, where Debian's identical ABI says ``CURL_OPENSSL_4``.

    python mesos_lib.py fetch CACHE_DIR         -> prints the cached tarball's path
    python mesos_lib.py install TARBALL LIBDIR  -> writes LIBDIR/libmesos-1.11.0.so
"""

from __future__ import annotations

import hashlib
import re
import ssl
import struct
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

PROJECT = "mesos.scheduler"
FILENAME = "mesos.scheduler-1.11.0.linux-x86_64.tar.gz"
SHA256 = "1d376f20bca6d05ee8b90c1c123a452b28753497ccc2f1c80ea3ac94c12e8f6e"
DEFAULT_INDEX = "https://pypi.org/simple/"
SHT_GNU_VERNEED = 0x6FFFFFFE


def _pip_config(key: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", key], capture_output=True, text=True
    )
    return out.stdout.strip() if out.returncode == 0 else ""


def _ssl_context() -> ssl.SSLContext:
    cert = _pip_config("global.cert")
    return ssl.create_default_context(cafile=cert or None)


def fetch(cache: Path) -> Path:
    """Download the bdist into ``cache`` once; later calls reuse it after checking its hash."""
    target = cache / FILENAME
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == SHA256:
        return target
    index = _pip_config("global.index-url") or DEFAULT_INDEX
    base = index.rstrip("/") + "/" + re.sub(r"[-_.]+", "-", PROJECT).lower() + "/"
    ctx = _ssl_context()
    page = urllib.request.urlopen(base, context=ctx, timeout=60).read().decode()
    for href in re.findall(r'href="([^"]+)"', page):
        if href.split("#")[0].rsplit("/", 1)[-1] != FILENAME:
            continue
        url = urllib.parse.urljoin(base, href.split("#")[0])
        data = urllib.request.urlopen(url, context=ctx, timeout=300).read()
        digest = hashlib.sha256(data).hexdigest()
        if digest != SHA256:
            raise SystemExit(f"{FILENAME}: sha256 {digest}, expected {SHA256}")
        cache.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(target)
        return target
    raise SystemExit(f"{FILENAME} is not on the index {base}")


def _elf_hash(name: bytes) -> int:
    h = 0
    for c in name:
        h = (h << 4) + c
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g
    return h & 0xFFFFFFFF


def rename_verneed(elf: bytearray, old: bytes, new: bytes) -> int:
    """Rename version requirement ``old`` to ``new`` (same length) in an ELF64 LE image.

    Returns how many requirements were renamed; the hash stored beside each name is updated too,
    since the dynamic linker matches on both.
    """
    if len(old) != len(new):
        raise ValueError("the new version name must be as long as the old one")
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    renamed = 0
    for _name, kind, _flags, _addr, offset, _size, link, info, _align, _entsize in sections:
        if kind != SHT_GNU_VERNEED:
            continue
        strtab = sections[link][4]
        entry = offset
        for _ in range(info):
            _version, count, _file, aux, nxt = struct.unpack_from("<HHIII", elf, entry)
            at = entry + aux
            for _ in range(count):
                _hash, _flags2, _other, name, anext = struct.unpack_from("<IHHII", elf, at)
                start = strtab + name
                if elf[start : start + len(old) + 1] == old + b"\0":
                    elf[start : start + len(new)] = new
                    struct.pack_into("<I", elf, at, _elf_hash(new))
                    renamed += 1
                if not anext:
                    break
                at += anext
            if not nxt:
                break
            entry += nxt
    return renamed


def install(tarball: Path, libdir: Path) -> Path:
    with tarfile.open(tarball) as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith("/_scheduler.so")), None)
        if member is None:
            raise SystemExit(f"{tarball}: no _scheduler.so inside")
        data = bytearray(tar.extractfile(member).read())
    if not rename_verneed(data, b"CURL_OPENSSL_3", b"CURL_OPENSSL_4"):
        raise SystemExit("libmesos: no CURL_OPENSSL_3 version requirement to rename")
    libdir.mkdir(parents=True, exist_ok=True)
    target = libdir / "libmesos-1.11.0.so"
    tmp = target.with_suffix(".so.part")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(target)
    return target


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "fetch":
        print(fetch(Path(argv[1])))
    elif len(argv) == 3 and argv[0] == "install":
        print(install(Path(argv[1]), Path(argv[2])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
