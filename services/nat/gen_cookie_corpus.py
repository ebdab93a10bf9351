#!/usr/bin/env python3
# Writes the seed corpus of fuzz_cookie (fuzz/corpus/fuzz_cookie/): cookie replies
# sealed for the target's key and mac1 (one that opens), and broken ones: other
# mac1, flipped tag, short, long, wrong type, reserved bytes; an initiation.
# XChaCha20-Poly1305 from libsodium through ctypes (the library the build
# links). Run from the source tree root: python3 services/nat/gen_cookie_corpus.py
import hashlib, os, struct
d = "fuzz/corpus/fuzz_cookie"
os.makedirs(d, exist_ok=True)
def w(name, b): open(os.path.join(d, name), "wb").write(b)
key = hashlib.blake2b(b"cookie--" + bytes([0x42]) * 32, digest_size=32).digest()
mac1 = bytes(range(0xA0, 0xB0))
cookie = bytes(range(16))
nonce = bytes(range(24))
head = bytes([3, 0, 0, 0]) + struct.pack("<I", 0xA1B2C3D4) + nonce
import ctypes, ctypes.util
sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so")
def seal(plain, ad, nonce, key):
    out = ctypes.create_string_buffer(len(plain) + 16)
    n = ctypes.c_ulonglong()
    assert sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out, ctypes.byref(n), plain, ctypes.c_ulonglong(len(plain)),
                                                             ad, ctypes.c_ulonglong(len(ad)), None, nonce, key) == 0
    return out.raw[:n.value]
good = head + seal(cookie, mac1, nonce, key)
w("reply-opens", good)
w("reply-other-mac1", head + seal(cookie, bytes(16), nonce, key))
w("reply-flipped", good[:40] + bytes([good[40] ^ 1]) + good[41:])
w("reply-short", good[:63])
w("reply-long", good + b"\0")
w("reply-type1", bytes([1]) + good[1:])
w("reply-reserved", good[:2] + b"\1" + good[3:])
w("empty", b"")
w("initiation", bytes([1, 0, 0, 0]) + struct.pack("<I", 0xA1B2C3D4) + bytes(range(140)))
