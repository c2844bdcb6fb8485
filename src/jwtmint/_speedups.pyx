# cython: language_level=3, boundscheck=False, wraparound=False, embedsignature=True, cdivision=True, initializedcheck=False
"""Hot-path kernels in C (Cython): base64url, claims splicing, JWS assembly, DER -> R||S.

``_pure`` defines the same functions with the same signatures and output;
the tests compare them byte for byte. The work is done on raw buffers: one
allocation for the signing input, one for the final ``str``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.number cimport PyNumber_Index
from libc.stdint cimport uint64_t
from cpython.pyport cimport PY_SSIZE_T_MAX
from libc.string cimport memchr, memcpy
from libc.math cimport floor as c_floor
from libc.limits cimport LLONG_MAX
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM

import math

from orjson import JSONEncodeError as _JSONEncodeError, dumps as _orjson_dumps

cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    unsigned char* PyUnicode_1BYTE_DATA(object o)

IMPLEMENTATION = "c"

cdef extern from "_openssl.h":
    ctypedef struct jm_hmac:
        int bits
    const int jm_openssl_available
    int jm_hmac_init(jm_hmac* h, int bits, const unsigned char* key, size_t key_len) nogil
    void jm_hmac_clear(jm_hmac* h) nogil
    void jm_wipe(void* data, size_t size) nogil
    ctypedef struct jm_ecdsa:
        void* key
        int bits
    int jm_ecdsa_init(jm_ecdsa* e, const unsigned char* der, long der_len, int bits) nogil
    void jm_ecdsa_free(jm_ecdsa* e) nogil
    int jm_ecdsa_sign(const jm_ecdsa* e, const unsigned char* data, size_t length,
                      unsigned char* out) nogil
    size_t jm_hmac_sign(const jm_hmac* h, const unsigned char* data, size_t length,
                        unsigned char* out) nogil
    ctypedef struct jm_ecdsa_pair:
        void* kinv
        void* r
    void jm_ecdsa_pair_clear(jm_ecdsa_pair* pair) nogil
    int jm_ecdsa_precompute(const jm_ecdsa* e, jm_ecdsa_pair* pairs, int n) nogil
    int jm_ecdsa_sign_pair(const jm_ecdsa* e, jm_ecdsa_pair* pair, const unsigned char* data,
                           size_t length, unsigned char* out, int* used) nogil
    long jm_getpid() nogil

#: How HS256/384/512 are computed: "openssl" (C, pre-padded SHA states) or "hashlib".
HMAC_BACKEND = "openssl" if jm_openssl_available else "hashlib"

cdef const char* _B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

# Widest ECDSA signature component: P-521 -> 66 bytes.
cdef enum:
    MAX_EC_SIZE = 66


cdef inline Py_ssize_t _b64len(Py_ssize_t n) noexcept nogil:
    return (n // 3) * 4 + ((n % 3) * 4 + 2) // 3


cdef Py_ssize_t _b64enc(const unsigned char* src, Py_ssize_t n, unsigned char* dst) noexcept nogil:
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t o = 0
    cdef unsigned int v
    while i + 2 < n:
        v = (<unsigned int>src[i] << 16) | (<unsigned int>src[i + 1] << 8) | src[i + 2]
        dst[o] = _B64[(v >> 18) & 63]
        dst[o + 1] = _B64[(v >> 12) & 63]
        dst[o + 2] = _B64[(v >> 6) & 63]
        dst[o + 3] = _B64[v & 63]
        i += 3
        o += 4
    if n - i == 1:
        v = <unsigned int>src[i] << 16
        dst[o] = _B64[(v >> 18) & 63]
        dst[o + 1] = _B64[(v >> 12) & 63]
        o += 2
    elif n - i == 2:
        v = (<unsigned int>src[i] << 16) | (<unsigned int>src[i + 1] << 8)
        dst[o] = _B64[(v >> 18) & 63]
        dst[o + 1] = _B64[(v >> 12) & 63]
        dst[o + 2] = _B64[(v >> 6) & 63]
        o += 3
    return o


cdef inline Py_ssize_t _put_int(long long value, unsigned char* dst) noexcept nogil:
    """Decimal digits of value at dst; returns how many bytes were written."""
    cdef unsigned char tmp[24]
    cdef Py_ssize_t n = 0
    cdef Py_ssize_t k = 0
    cdef unsigned long long u
    if value < 0:
        dst[0] = c'-'
        k = 1
        u = <unsigned long long>(-(value + 1)) + 1
    else:
        u = <unsigned long long>value
    while True:
        tmp[n] = <unsigned char>(c'0' + u % 10)
        n += 1
        u //= 10
        if u == 0:
            break
    while n > 0:
        n -= 1
        dst[k] = tmp[n]
        k += 1
    return k


cdef inline Py_ssize_t _put(unsigned char* dst, const char* src, Py_ssize_t n) noexcept nogil:
    memcpy(dst, src, n)
    return n


def b64url_encode(bytes data not None):
    """Base64url without padding (RFC 7515 §2, RFC 4648 §5)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    out = PyBytes_FromStringAndSize(NULL, _b64len(n))
    _b64enc(<const unsigned char*>PyBytes_AS_STRING(data), n, <unsigned char*>PyBytes_AS_STRING(out))
    return out


cdef int _read_der_int(const unsigned char* der, Py_ssize_t n, Py_ssize_t* pos,
                       int size, unsigned char* out) except -1:
    cdef Py_ssize_t p = pos[0]
    cdef Py_ssize_t length
    if p + 2 > n or der[p] != 0x02:
        raise ValueError("malformed ECDSA signature: expected an INTEGER")
    length = der[p + 1]
    p += 2
    if length & 0x80 or length == 0 or p + length > n:
        raise ValueError("malformed ECDSA signature: bad INTEGER length")
    if der[p] & 0x80:
        raise ValueError("malformed ECDSA signature: negative INTEGER")
    if length > 1 and der[p] == 0 and not der[p + 1] & 0x80:
        # DER (X.690 §8.3.2) allows one leading zero, only before a high bit.
        raise ValueError("malformed ECDSA signature: non-minimal INTEGER")
    pos[0] = p + length
    while length > 0 and der[p] == 0:
        p += 1
        length -= 1
    if length > size:
        raise ValueError("malformed ECDSA signature: INTEGER longer than the curve order")
    cdef Py_ssize_t pad = size - length
    cdef Py_ssize_t i
    for i in range(pad):
        out[i] = 0
    memcpy(out + pad, der + p, length)
    return 0


cdef int _der_to_raw(const unsigned char* der, Py_ssize_t n, int size, unsigned char* out) except -1:
    cdef Py_ssize_t pos = 2
    cdef Py_ssize_t length
    if size <= 0 or size > MAX_EC_SIZE:
        raise ValueError("ECDSA component size must be between 1 and 66 bytes")
    if n < 8 or der[0] != 0x30:
        raise ValueError("malformed ECDSA signature: expected a SEQUENCE")
    length = der[1]
    if length == 0x81:
        length = der[2]
        pos = 3
        if length < 0x80:  # DER uses the short form below 128 (X.690 §10.1)
            raise ValueError("malformed ECDSA signature: non-minimal SEQUENCE length")
    elif length & 0x80:
        raise ValueError("malformed ECDSA signature: bad SEQUENCE length")
    if pos + length != n:
        raise ValueError("malformed ECDSA signature: SEQUENCE length mismatch")
    _read_der_int(der, n, &pos, size, out)
    _read_der_int(der, n, &pos, size, out + size)
    if pos != n:
        raise ValueError("malformed ECDSA signature: trailing bytes")
    return 0


def der_to_raw(bytes der not None, size):
    """ECDSA-Sig-Value (DER SEQUENCE of r, s) to fixed-width R||S (RFC 7518 §3.4)."""
    cdef unsigned char raw[2 * MAX_EC_SIZE]
    # size comes in as an object: a C int parameter would raise OverflowError for a huge
    # one (the contract, and the twin, say ValueError) and take a float (the twin refuses)
    size = PyNumber_Index(size)
    if not 0 < size <= MAX_EC_SIZE:
        raise ValueError("ECDSA component size must be between 1 and 66 bytes")
    cdef int width = size
    _der_to_raw(<const unsigned char*>PyBytes_AS_STRING(der), PyBytes_GET_SIZE(der), width, raw)
    return PyBytes_FromStringAndSize(<char*>raw, 2 * width)


def assertion_signing_input(bytes header_b64 not None, bytes prefix not None, bytes jti not None,
                            long long iat, long long exp, bytes suffix not None):
    """``header_b64 "." b64url(claims)``, the claims spliced into a template.

    The claims JSON is ``prefix + b64url(jti) + '","iat":' iat ',"nbf":' iat
    ',"exp":' exp + suffix``; ``prefix`` ends with ``"jti":"``.
    """
    return _signing_input(header_b64, prefix, jti, iat, exp, suffix)


cdef bytes _signing_input(bytes header_b64, bytes prefix, bytes jti,
                          long long iat, long long exp, bytes suffix):
    cdef Py_ssize_t hlen = PyBytes_GET_SIZE(header_b64)
    cdef Py_ssize_t plen = PyBytes_GET_SIZE(prefix)
    cdef Py_ssize_t jlen = PyBytes_GET_SIZE(jti)
    cdef Py_ssize_t slen = PyBytes_GET_SIZE(suffix)
    # 3 integers of at most 20 characters each, 22 bytes of fixed punctuation.
    cdef Py_ssize_t cap = plen + _b64len(jlen) + slen + 3 * 20 + 22
    cdef unsigned char* claims = <unsigned char*>PyMem_Malloc(cap)
    cdef Py_ssize_t c = 0
    if claims == NULL:
        raise MemoryError()
    try:
        c += _put(claims + c, PyBytes_AS_STRING(prefix), plen)
        c += _b64enc(<const unsigned char*>PyBytes_AS_STRING(jti), jlen, claims + c)
        c += _put(claims + c, b'","iat":', 8)
        c += _put_int(iat, claims + c)
        c += _put(claims + c, b',"nbf":', 7)
        c += _put_int(iat, claims + c)
        c += _put(claims + c, b',"exp":', 7)
        c += _put_int(exp, claims + c)
        c += _put(claims + c, PyBytes_AS_STRING(suffix), slen)
        out = PyBytes_FromStringAndSize(NULL, hlen + 1 + _b64len(c))
        buf = <unsigned char*>PyBytes_AS_STRING(out)
        memcpy(buf, PyBytes_AS_STRING(header_b64), hlen)
        buf[hlen] = c'.'
        _b64enc(claims, c, buf + hlen + 1)
    finally:
        PyMem_Free(claims)
    return out


cdef inline bint _is_ascii(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i = 0
    cdef uint64_t word
    while i + 8 <= n:
        memcpy(&word, s + i, 8)
        if word & 0x8080808080808080ULL:
            return False
        i += 8
    while i < n:
        if s[i] & 0x80:
            return False
        i += 1
    return True


cdef str _compact(bytes signing_input, bytes signature, int ec_size, bint trusted):
    cdef unsigned char raw[2 * MAX_EC_SIZE]
    cdef const unsigned char* sig = <const unsigned char*>PyBytes_AS_STRING(signature)
    cdef Py_ssize_t siglen = PyBytes_GET_SIZE(signature)
    cdef Py_ssize_t silen = PyBytes_GET_SIZE(signing_input)
    if ec_size:
        _der_to_raw(sig, siglen, ec_size, raw)
        sig = raw
        siglen = 2 * ec_size
    # The result is a 1-byte-kind str declared ASCII: a byte >= 0x80 would
    # make a corrupt str. Raise bytes.decode's UnicodeDecodeError instead, as _pure does.
    if not trusted and not _is_ascii(<const unsigned char*>PyBytes_AS_STRING(signing_input), silen):
        signing_input.decode("ascii")
    out = PyUnicode_New(silen + 1 + _b64len(siglen), 127)
    cdef unsigned char* buf = PyUnicode_1BYTE_DATA(out)
    memcpy(buf, PyBytes_AS_STRING(signing_input), silen)
    buf[silen] = c'.'
    _b64enc(sig, siglen, buf + silen + 1)
    return out


def compact(bytes signing_input not None, bytes signature not None, int ec_size):
    """The compact JWS: signing input, ".", base64url signature (RFC 7515 §7.1).

    ``ec_size`` is the byte width of R and S for ECDSA (signature given as
    DER), or 0 when the signature is used as it is.
    """
    return _compact(signing_input, signature, ec_size, False)


#: nesting deeper than this is left to json (orjson refuses it; _json._MAX_DEPTH is the same)
cdef enum:
    MAX_PLAIN_DEPTH = 200


cdef bint _plain_json(object obj, int depth):
    """obj holds only str keys and exact str, int, bool, None, list and dict values: the
    JSON values orjson writes as json.dumps does (floats and subclasses are not)."""
    cdef type kind = type(obj)
    if kind is str or kind is int or kind is bool or obj is None:
        return True
    if depth > MAX_PLAIN_DEPTH:
        return False
    if kind is dict:
        # only type checks below: no Python code runs, so the dict cannot change under us
        for name, value in (<dict>obj).items():
            if type(name) is not str:
                return False
            kind = type(value)
            if kind is str or kind is int or kind is bool or value is None:
                continue
            if not _plain_json(value, depth + 1):
                return False
        return True
    if kind is list:
        for value in <list>obj:
            if not _plain_json(value, depth + 1):
                return False
        return True
    return False


def jws_plain(dict claims not None, bytes header_b64 not None, sign, int ec_size):
    """The compact JWS of ``claims`` written as ``json.dumps(claims, separators=(",", ":"))``
    under ``header_b64``, signed with ``sign``; or None, before signing anything, when that
    JSON is not orjson's: a value other than str, int, bool, None, list or dict (exact
    types), a key that is not a str, an integer beyond 64 bits, or non-ASCII or DEL output.
    """
    if not _plain_json(claims, 0):
        return None
    try:
        claims_json = _orjson_dumps(claims)
    except _JSONEncodeError:  # integers beyond 64 bits, lone surrogates, depth
        return None
    cdef const unsigned char* c = <const unsigned char*>PyBytes_AS_STRING(claims_json)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(claims_json)
    if not _is_ascii(c, n) or memchr(c, 0x7f, n) != NULL:
        return None  # json escapes non-ASCII and DEL (\u007f); orjson writes them as they are
    if not _is_ascii(<const unsigned char*>PyBytes_AS_STRING(header_b64), PyBytes_GET_SIZE(header_b64)):
        header_b64.decode("ascii")
    cdef Py_ssize_t hlen = PyBytes_GET_SIZE(header_b64)
    signing_input = PyBytes_FromStringAndSize(NULL, hlen + 1 + _b64len(n))
    cdef unsigned char* buf = <unsigned char*>PyBytes_AS_STRING(signing_input)
    memcpy(buf, PyBytes_AS_STRING(header_b64), hlen)
    buf[hlen] = c'.'
    _b64enc(c, n, buf + hlen + 1)
    return _compact(signing_input, _call_sign(sign, signing_input), ec_size, True)


def str_items(dict mapping not None):
    """``(k1, v1, k2, v2, ...)`` of a dict whose keys and values are all exactly ``str``
    (in its order), else None: a hashable stand-in for flat JOSE headers."""
    cdef Py_ssize_t i = 0
    out = PyTuple_New(2 * len(mapping))
    for name, value in mapping.items():
        if type(name) is not str or type(value) is not str:
            return None
        Py_INCREF(name)
        PyTuple_SET_ITEM(out, i, name)
        Py_INCREF(value)
        PyTuple_SET_ITEM(out, i + 1, value)
        i += 2
    return out


cdef class _HmacSigner:
    """HMAC-SHA-256/384/512 with the key pads absorbed once; call it with the data.

    Holds the two hash states, which can MAC like the key itself: never shown
    in its repr, not picklable, and wiped when the object is freed.
    """

    cdef jm_hmac state
    cdef int size

    def __cinit__(self, bytes secret not None, int bits):
        if jm_hmac_init(&self.state, bits, <const unsigned char*>PyBytes_AS_STRING(secret),
                        <size_t>PyBytes_GET_SIZE(secret)) != 0:
            raise ValueError("HMAC needs SHA-256, SHA-384 or SHA-512 and the OpenSSL backend")
        self.size = bits // 8

    def __dealloc__(self):
        jm_hmac_clear(&self.state)  # the padded states are as good as the key

    def __repr__(self):
        return f"<_HmacSigner SHA-{self.size * 8}>"

    def __reduce__(self):
        raise TypeError("_HmacSigner holds key material and cannot be pickled")

    cdef bytes _sign(self, bytes data):
        # The GIL stays held, as hashlib does below 2 KiB: for a signing input
        # this short, releasing and retaking it costs a large share of the MAC.
        out = PyBytes_FromStringAndSize(NULL, self.size)
        jm_hmac_sign(&self.state, <const unsigned char*>PyBytes_AS_STRING(data),
                     <size_t>PyBytes_GET_SIZE(data), <unsigned char*>PyBytes_AS_STRING(out))
        return out

    def __call__(self, bytes data not None):
        return self._sign(data)


ctypedef int (*crypto_sign_fn)(unsigned char* signed_message, unsigned long long* signed_length,
                               const unsigned char* message, unsigned long long length,
                               const unsigned char* secret) noexcept nogil


cdef class _Messages:
    """A chunk of messages for one GIL-free section: pointers into bytes objects it keeps alive.

    ``sign_many`` takes its chunk as a tuple copy, so no other thread can free a message
    (by changing the caller's list) while the signer reads it without the GIL.
    """

    cdef tuple items
    cdef Py_ssize_t count
    cdef const unsigned char** data
    cdef size_t* lengths
    cdef size_t longest

    def __cinit__(self, inputs):
        cdef Py_ssize_t i
        cdef object item
        self.items = tuple(inputs)
        self.count = len(self.items)
        self.data = <const unsigned char**>PyMem_Malloc((self.count + 1) * sizeof(char*))
        self.lengths = <size_t*>PyMem_Malloc((self.count + 1) * sizeof(size_t))
        if self.data == NULL or self.lengths == NULL:
            raise MemoryError()
        self.longest = 0
        for i in range(self.count):
            item = self.items[i]
            if type(item) is not bytes:
                raise TypeError(f"sign_many signs bytes, got {type(item).__name__}")
            self.data[i] = <const unsigned char*>PyBytes_AS_STRING(item)
            self.lengths[i] = <size_t>PyBytes_GET_SIZE(item)
            if self.lengths[i] > self.longest:
                self.longest = self.lengths[i]

    def __dealloc__(self):
        PyMem_Free(self.data)
        PyMem_Free(self.lengths)


cdef list _signatures(const unsigned char* out, Py_ssize_t stride, const int* sizes,
                      Py_ssize_t count):
    cdef list result = [None] * count
    cdef Py_ssize_t i
    for i in range(count):
        result[i] = PyBytes_FromStringAndSize(<const char*>out + i * stride, sizes[i])
    return result


cdef class _SodiumSigner:
    """Ed25519 through libsodium's crypto_sign, called at its address, the GIL released.

    Holds libsodium's 64-byte secret key: never shown in its repr, not
    picklable, and wiped when the object is freed.
    """

    cdef crypto_sign_fn fn
    cdef unsigned char secret[64]
    cdef object library  # PyNaCl's module: keeps the shared library loaded
    #: Threads sign in parallel: jwtmint._batch needs no worker processes for it.
    releases_gil = True

    def __dealloc__(self):
        jm_wipe(self.secret, 64)

    def __repr__(self):
        return "<_SodiumSigner Ed25519>"

    def __reduce__(self):
        raise TypeError("_SodiumSigner holds key material and cannot be pickled")

    cdef bytes _sign(self, bytes data):
        cdef Py_ssize_t length = PyBytes_GET_SIZE(data)
        cdef const unsigned char* message = <const unsigned char*>PyBytes_AS_STRING(data)
        cdef unsigned char* signed_message = <unsigned char*>PyMem_Malloc(length + 64)
        cdef int status
        if self.fn == NULL:  # made without sodium_signer()
            PyMem_Free(signed_message)
            raise RuntimeError("_SodiumSigner has no function: use sodium_signer()")
        if signed_message == NULL:
            raise MemoryError()
        try:
            with nogil:  # a whole signature touches no Python object: other threads run meanwhile
                status = self.fn(signed_message, NULL, message, <unsigned long long>length,
                                 self.secret)
            if status != 0:
                raise RuntimeError("libsodium crypto_sign failed")
            return PyBytes_FromStringAndSize(<char*>signed_message, 64)
        finally:
            PyMem_Free(signed_message)

    def __call__(self, bytes data not None):
        return self._sign(data)

    def sign_many(self, inputs):
        """The signatures of a chunk of messages, in order, signed in **one** GIL-free section.

        ``jwtmint._batch`` gives each thread a chunk: the threads then take the
        GIL once per chunk instead of once per signature (each handoff costs
        about what the work it wraps saves).
        """
        cdef _Messages chunk = _Messages(inputs)
        cdef Py_ssize_t i, n = chunk.count
        cdef int failed = 0
        cdef unsigned char* signed_message
        cdef unsigned char* out
        cdef int* sizes
        if self.fn == NULL:
            raise RuntimeError("_SodiumSigner has no function: use sodium_signer()")
        if n > (PY_SSIZE_T_MAX - 1) // 64:
            raise MemoryError()
        signed_message = <unsigned char*>PyMem_Malloc(chunk.longest + 64)
        out = <unsigned char*>PyMem_Malloc(n * 64 + 1)
        sizes = <int*>PyMem_Malloc((n + 1) * sizeof(int))
        try:
            if signed_message == NULL or out == NULL or sizes == NULL:
                raise MemoryError()
            with nogil:
                for i in range(n):
                    if self.fn(signed_message, NULL, chunk.data[i],
                               <unsigned long long>chunk.lengths[i], self.secret) != 0:
                        failed = 1
                        break
                    memcpy(out + i * 64, signed_message, 64)
                    sizes[i] = 64
            if failed:
                raise RuntimeError("libsodium crypto_sign failed")
            return _signatures(out, 64, sizes, n)
        finally:
            PyMem_Free(signed_message)
            PyMem_Free(out)
            PyMem_Free(sizes)


def sodium_signer(bytes secret not None):
    """Ed25519 signing with libsodium from PyNaCl's cffi module, or None without it.

    ``secret`` is libsodium's 64-byte secret key (seed || public key). Each
    call is one ``crypto_sign``, with the GIL released while it signs.
    """
    try:
        from nacl._sodium import ffi, lib
    except ImportError:
        return None
    if PyBytes_GET_SIZE(secret) != 64:
        raise ValueError("an Ed25519 secret key for libsodium has 64 bytes")
    cdef size_t address = int(ffi.cast("uintptr_t", ffi.addressof(lib, "crypto_sign")))
    cdef _SodiumSigner signer = _SodiumSigner.__new__(_SodiumSigner)
    signer.fn = <crypto_sign_fn>address
    memcpy(signer.secret, PyBytes_AS_STRING(secret), 64)
    signer.library = lib
    return signer


cdef class _EcdsaSigner:
    """ECDSA with OpenSSL's EC_KEY, loaded once; the GIL is released while it signs.

    Returns DER like cryptography's sign(), so the kernels convert it to R||S
    the same way. Holds the private key inside OpenSSL; never shown, not
    picklable, freed (and cleared by OpenSSL) with the object. (The SEC1 DER
    it was loaded from is an ordinary bytes object, not wiped.)
    """

    cdef jm_ecdsa state
    #: Threads sign in parallel: jwtmint._batch needs no worker processes for it.
    releases_gil = True

    def __dealloc__(self):
        jm_ecdsa_free(&self.state)

    def __repr__(self):
        return f"<_EcdsaSigner ES{self.state.bits}>"

    def __reduce__(self):
        raise TypeError("_EcdsaSigner holds key material and cannot be pickled")

    cdef bytes _sign(self, bytes data):
        cdef unsigned char der[2 * MAX_EC_SIZE + 16]
        cdef const unsigned char* message = <const unsigned char*>PyBytes_AS_STRING(data)
        cdef size_t length = <size_t>PyBytes_GET_SIZE(data)
        cdef int size
        if self.state.key == NULL:  # made without ecdsa_signer()
            raise RuntimeError("_EcdsaSigner has no key: use ecdsa_signer()")
        with nogil:  # curve arithmetic touches no Python object: other threads run meanwhile
            size = jm_ecdsa_sign(&self.state, message, length, der)
        if size <= 0:
            raise RuntimeError("OpenSSL ECDSA signing failed")
        return PyBytes_FromStringAndSize(<char*>der, size)

    def __call__(self, bytes data not None):
        return self._sign(data)

    def sign_many(self, inputs):
        """The DER signatures of a chunk of messages, in order, signed in **one** GIL-free
        section (see ``_SodiumSigner.sign_many``)."""
        cdef _Messages chunk = _Messages(inputs)
        cdef Py_ssize_t i, n = chunk.count
        cdef Py_ssize_t stride = 2 * MAX_EC_SIZE + 16
        cdef int failed = 0
        cdef unsigned char* out
        cdef int* sizes
        if self.state.key == NULL:
            raise RuntimeError("_EcdsaSigner has no key: use ecdsa_signer()")
        if n > (PY_SSIZE_T_MAX - 1) // stride:
            raise MemoryError()
        out = <unsigned char*>PyMem_Malloc(n * stride + 1)
        sizes = <int*>PyMem_Malloc((n + 1) * sizeof(int))
        try:
            if out == NULL or sizes == NULL:
                raise MemoryError()
            with nogil:
                for i in range(n):
                    sizes[i] = jm_ecdsa_sign(&self.state, chunk.data[i], chunk.lengths[i],
                                             out + i * stride)
                    if sizes[i] <= 0:
                        failed = 1
                        break
            if failed:
                raise RuntimeError("OpenSSL ECDSA signing failed")
            return _signatures(out, stride, sizes, n)
        finally:
            PyMem_Free(out)
            PyMem_Free(sizes)


def ecdsa_signer(bytes sec1_der not None, int bits):
    """An ECDSA ``sign(data) -> DER`` callable on OpenSSL directly, or None where there is none.

    ``sec1_der`` is the private key as SEC1 DER; ``bits`` is the hash size
    (256, 384, 512). None when this build has no such path (it needs the
    compiled extension and OpenSSL): the caller signs through cryptography.
    """
    if not jm_openssl_available:
        return None
    cdef _EcdsaSigner signer = _EcdsaSigner.__new__(_EcdsaSigner)
    if jm_ecdsa_init(&signer.state, <const unsigned char*>PyBytes_AS_STRING(sec1_der),
                     PyBytes_GET_SIZE(sec1_der), bits) != 0:
        raise ValueError("OpenSSL could not load this EC private key")
    return signer


# Pairs made per GIL release in fill(): each one is a scalar multiplication (~15 us on
# P-256), so a batch stays short and takers see new pairs soon.
cdef enum:
    FILL_BATCH = 8
    MAX_DEPTH = 65536


cdef class _EcdsaPrecomputed(_EcdsaSigner):
    """ECDSA whose per-signature secret is made ahead of time: see ``ecdsa_precomputed``.

    A bounded store of (k^-1, r) pairs held in C. ``fill(n)`` makes pairs with
    the GIL released; a call takes one pair (under the GIL, so each pair signs
    exactly once however many threads sign) and signs with it, the GIL still
    held: a hash and a few modular operations, too short to gain from letting
    other threads run, and a release would let a busy thread keep the GIL for
    up to a switch interval. With the store empty it signs normally, never
    waiting, the GIL released as ``_EcdsaSigner`` does. ``on_low(self)`` is
    called once when the store falls below ``low_water``, then not again
    until a ``fill`` leaves the store full or fails (or ``on_low`` raised).
    ``close()`` wipes the store for good: nothing is stored again.

    A pair is as secret as the key: with one pair and the signature it made,
    or two signatures from one pair, anyone computes the private key. So a
    pair is freed (BN_clear_free) as soon as it signs, on ``clear()`` and
    ``close()``, and with the object; a forked child never signs with its
    parent's pairs (the store is wiped in the child by jwtmint._forksafe, and
    every take checks the owning process id). Pairs wait in ordinary memory until used: a
    process whose memory can be read loses its key anyway. Not picklable;
    the repr shows the algorithm and counts only. The store is guarded by the GIL.
    """

    cdef jm_ecdsa_pair* pairs
    cdef int capacity, count, low
    cdef long owner_pid
    cdef bint wake_pending, shut
    cdef unsigned long long n_precomputed, n_direct, n_made, n_discarded
    #: Called with the signer when the store falls below low_water (the refiller's wake).
    cdef public object on_low
    cdef object __weakref__

    def __cinit__(self):
        self.owner_pid = jm_getpid()

    def __dealloc__(self):
        self._wipe()
        PyMem_Free(self.pairs)
        self.pairs = NULL

    def __repr__(self):
        if self.shut:
            return f"<_EcdsaPrecomputed ES{self.state.bits} closed>"
        return f"<_EcdsaPrecomputed ES{self.state.bits} {self.count}/{self.capacity} ready>"

    def __reduce__(self):
        raise TypeError("_EcdsaPrecomputed holds key material and cannot be pickled")

    cdef int _wipe(self) noexcept:
        cdef int wiped = self.count
        while self.count > 0:
            self.count -= 1
            jm_ecdsa_pair_clear(&self.pairs[self.count])
        self.n_discarded += wiped
        return wiped

    cdef void _own(self, long pid) noexcept:
        # another process's copy of the store: its pairs are the parent's k values
        self._wipe()
        self.owner_pid = pid
        self.wake_pending = False

    def clear(self):
        """Wipe every stored pair; returns how many there were."""
        return self._wipe()

    def close(self):
        """Wipe every stored pair and store no more; returns how many there were.

        For a store that will not sign again (its key rotated out, its signer
        dropped): ``fill`` stores nothing and returns 0 from now on, even one
        under way in another thread, so a refill stops, and every later call
        signs whole. ``on_low`` is dropped and never called again.
        """
        self.shut = True
        self.on_low = None
        return self._wipe()

    @property
    def closed(self):
        """Whether ``close()`` was called: the store holds no pairs and stores none."""
        return self.shut

    def _reset_in_child(self):
        """jwtmint._forksafe calls this in a forked child: drop the parent's pairs."""
        self._own(jm_getpid())

    @property
    def depth(self):
        """How many pairs the store holds at most."""
        return self.capacity

    @property
    def low_water(self):
        """Below this many stored pairs, ``on_low`` is called."""
        return self.low

    @property
    def available(self):
        """Pairs ready to sign with now."""
        return self.count if jm_getpid() == self.owner_pid else 0

    @property
    def precomputed(self):
        """Signatures made with a stored pair."""
        return self.n_precomputed

    @property
    def direct(self):
        """Signatures made whole, the store being empty (or a pair refused)."""
        return self.n_direct

    @property
    def made(self):
        """Pairs made by fill() in this object's life."""
        return self.n_made

    @property
    def discarded(self):
        """Pairs wiped unused: clear(), a fork, or a fill finding the store full."""
        return self.n_discarded

    def fill(self, int n=-1):
        """Make up to ``n`` pairs (all the free room when negative) and store them.

        The GIL is released while each batch is made, so signing threads run
        meanwhile. Returns how many pairs were stored (0 once ``close()`` was
        called); raises RuntimeError if OpenSSL could make none.
        """
        cdef jm_ecdsa_pair batch[FILL_BATCH]
        cdef int want, made, i
        cdef int stored = 0
        cdef long pid = jm_getpid()
        if self.state.key == NULL:
            raise RuntimeError("_EcdsaPrecomputed has no key: use ecdsa_precomputed()")
        if self.shut:
            return 0
        if pid != self.owner_pid:
            self._own(pid)
        if n < 0:
            n = self.capacity
        while n > 0:
            want = min(n, FILL_BATCH, self.capacity - self.count)
            if want <= 0:
                break
            with nogil:
                made = jm_ecdsa_precompute(&self.state, batch, want)
            # the GIL again: only now is the store touched. Another fill may have filled
            # it, or close() closed it, meanwhile; what does not fit is wiped, never kept aside
            self.n_made += made
            for i in range(made):
                if not self.shut and self.count < self.capacity:
                    self.pairs[self.count] = batch[i]
                    self.count += 1
                    stored += 1
                else:
                    jm_ecdsa_pair_clear(&batch[i])
                    self.n_discarded += 1
            if self.shut:
                return 0  # what it stored, close() wiped
            if made < want:
                if stored == 0:
                    self.wake_pending = False  # failed: the next take below low water asks again
                    raise RuntimeError("OpenSSL could not precompute an ECDSA signature")
                break
            n -= made
        if self.count >= self.capacity:
            # the end of a refill: from here on, a take below low water calls on_low again
            # (not after each step of one, which would call it on every take meanwhile)
            self.wake_pending = False
        return stored

    cdef bytes _sign(self, bytes data):
        cdef unsigned char der[2 * MAX_EC_SIZE + 16]
        cdef const unsigned char* message = <const unsigned char*>PyBytes_AS_STRING(data)
        cdef size_t length = <size_t>PyBytes_GET_SIZE(data)
        cdef jm_ecdsa_pair pair
        cdef bint have = False
        cdef int used = 0
        cdef int size
        cdef bint woken
        cdef long pid
        if self.state.key == NULL:
            raise RuntimeError("_EcdsaPrecomputed has no key: use ecdsa_precomputed()")
        if self.count > 0:
            pid = jm_getpid()
            if pid != self.owner_pid:  # forked without at-fork handlers (a C-level fork)
                self._own(pid)
            else:
                # taken with the GIL held: no other thread can take the same pair
                self.count -= 1
                pair = self.pairs[self.count]
                self.pairs[self.count].kinv = NULL
                self.pairs[self.count].r = NULL
                have = True
        if have:
            # the GIL stays held: a hash and a few modular operations (~1.5 us) gain nothing
            # from running beside other threads, and once released, the GIL may go to a busy
            # thread for a whole switch interval (5 ms) before this one gets it back
            size = jm_ecdsa_sign_pair(&self.state, &pair, message, length, der, &used)
        else:
            with nogil:  # a whole signature (~20 us of curve arithmetic): other threads run
                size = jm_ecdsa_sign(&self.state, message, length, der)
        if used:
            self.n_precomputed += 1
        else:
            self.n_direct += 1
        if (self.count < self.low and not self.wake_pending and not self.shut
                and self.on_low is not None):
            self.wake_pending = True
            woken = False
            try:
                self.on_low(self)
                woken = True
            except Exception:
                # the signature is good: a refiller that cannot be woken must not fail it
                # (it logs its own errors); the next take tries again
                pass
            finally:
                # a KeyboardInterrupt or SystemExit goes on up; nothing was woken, so the
                # next take must ask again, or the store would never be refilled
                if not woken:
                    self.wake_pending = False
        if size <= 0:
            raise RuntimeError("OpenSSL ECDSA signing failed")
        return PyBytes_FromStringAndSize(<char*>der, size)

    def __call__(self, bytes data not None):
        return self._sign(data)

    def sign_many(self, inputs):
        """One signature at a time, each from a pair when there is one: the inherited chunk
        signer would sign past the store and its counters."""
        return [self._sign(data) for data in inputs]


def ecdsa_precomputed(bytes sec1_der not None, int bits, int depth, int low_water):
    """An ECDSA signer with a store of precomputed (k^-1, r) pairs, or None where there is none.

    Called like ``ecdsa_signer``'s (``sign(data) -> DER``, same output). The
    store holds up to ``depth`` pairs and starts empty: ``fill()`` it, or set
    ``on_low`` to a refiller's wake, called when fewer than ``low_water`` remain.
    None where this build has no such path (it needs the compiled extension
    and OpenSSL; the nonce arithmetic stays in OpenSSL's constant-time code):
    the caller signs through cryptography.
    """
    if not jm_openssl_available:
        return None
    if not 1 <= depth <= MAX_DEPTH or not 0 <= low_water <= depth:
        raise ValueError(f"depth must be 1 to {MAX_DEPTH} and low_water 0 to depth")
    cdef _EcdsaPrecomputed signer = _EcdsaPrecomputed.__new__(_EcdsaPrecomputed)
    if jm_ecdsa_init(&signer.state, <const unsigned char*>PyBytes_AS_STRING(sec1_der),
                     PyBytes_GET_SIZE(sec1_der), bits) != 0:
        raise ValueError("OpenSSL could not load this EC private key")
    signer.pairs = <jm_ecdsa_pair*>PyMem_Malloc(depth * sizeof(jm_ecdsa_pair))
    if signer.pairs == NULL:
        raise MemoryError()
    signer.capacity, signer.low = depth, low_water
    from ._forksafe import reset_in_child
    reset_in_child(signer, _EcdsaPrecomputed._reset_in_child)
    return signer


def hmac_signer(bytes secret not None, str hash_name not None):
    """A ``sign(data) -> MAC`` callable for HMAC with ``hash_name`` (sha256/384/512) and ``secret``.

    Each call continues from hash states already fed the key XOR ipad and
    XOR opad (RFC 2104 §2), so the key schedule is not redone per MAC.
    """
    if jm_openssl_available and hash_name in ("sha256", "sha384", "sha512"):
        return _HmacSigner(secret, int(hash_name[3:]))
    from . import _pure
    return _pure.hmac_signer(secret, hash_name)


cdef bytes _call_sign(sign, bytes signing_input):
    """The signature: the extension's own signers without a Python call, others called."""
    if type(sign) is _HmacSigner:
        return (<_HmacSigner>sign)._sign(signing_input)
    if type(sign) is _SodiumSigner:
        return (<_SodiumSigner>sign)._sign(signing_input)
    if type(sign) is _EcdsaSigner or type(sign) is _EcdsaPrecomputed:
        return (<_EcdsaSigner>sign)._sign(signing_input)
    signature = sign(signing_input)
    if type(signature) is not bytes:
        raise TypeError("sign() must return bytes")
    return signature


def mint(bytes header_b64 not None, bytes prefix not None, bytes suffix not None,
         bytes jti not None, long long iat, long long exp, sign, int ec_size):
    """One whole assertion: splice the claims, sign, assemble."""
    # Only header_b64 is copied verbatim into the token; the rest is base64url
    # written here. Check the header alone so the full scan in _compact can be
    # skipped; the error is bytes.decode's, at the same position, as in _pure.
    if not _is_ascii(<const unsigned char*>PyBytes_AS_STRING(header_b64), PyBytes_GET_SIZE(header_b64)):
        header_b64.decode("ascii")
    signing_input = _signing_input(header_b64, prefix, jti, iat, exp, suffix)
    return _compact(signing_input, _call_sign(sign, signing_input), ec_size, True)



cdef class _Minter:
    cdef bytes header_b64, prefix, suffix
    cdef long long lifetime
    cdef object clock, entropy, sign
    cdef int ec_size

    def __call__(self):
        cdef object now_value = self.clock()
        cdef long long now
        cdef double seconds
        if type(now_value) is float:
            seconds = PyFloat_AS_DOUBLE(now_value)
            if -9.0e18 < seconds < 9.0e18:
                now = <long long>c_floor(seconds)
            else:
                now = math.floor(now_value)  # too large for long long: OverflowError, as in _pure
        else:
            now = math.floor(now_value)
        if now > LLONG_MAX - self.lifetime:  # exp must not wrap around
            raise OverflowError("clock() + lifetime does not fit in 64 bits")
        jti = self.entropy()
        if type(jti) is not bytes:
            raise TypeError("entropy() must return bytes")
        signing_input = _signing_input(self.header_b64, self.prefix, jti, now,
                                       now + self.lifetime, self.suffix)
        return _compact(signing_input, _call_sign(self.sign, signing_input), self.ec_size, True)


def minter(bytes header_b64 not None, bytes prefix not None, bytes suffix not None,
           long long lifetime, clock, entropy, sign, int ec_size):
    """A zero-argument ``mint``: now = floor(clock()), jti from entropy(), exp = now + lifetime.

    Everything per signer is bound once; each call is one ``mint``. The
    header must be ASCII (it is copied into the token as it is).
    """
    header_b64.decode("ascii")
    cdef _Minter bound = _Minter.__new__(_Minter)
    bound.header_b64, bound.prefix, bound.suffix = header_b64, prefix, suffix
    bound.lifetime, bound.clock, bound.entropy = lifetime, clock, entropy
    bound.sign, bound.ec_size = sign, ec_size
    return bound


cdef long long _floor_clock(object now_value) except? -1:
    """floor(clock()) as _Minter takes it: a float in C, anything else through math.floor."""
    cdef double seconds
    if type(now_value) is float:
        seconds = PyFloat_AS_DOUBLE(now_value)
        if -9.0e18 < seconds < 9.0e18:
            return <long long>c_floor(seconds)
    return math.floor(now_value)  # too large for long long: OverflowError, as in _pure


cdef Py_ssize_t _optional_len(object value) except -1:
    if value is None:
        return 0
    if type(value) is not bytes:
        raise TypeError("ath and nonce_json must be bytes or None")
    return PyBytes_GET_SIZE(value)


cdef bytes _dpop_input(bytes header_b64, bytes jti, bytes htm_json, bytes htu_json,
                       long long iat, object ath, object nonce_json):
    cdef Py_ssize_t hlen = PyBytes_GET_SIZE(header_b64)
    cdef Py_ssize_t jlen = PyBytes_GET_SIZE(jti)
    cdef Py_ssize_t mlen = PyBytes_GET_SIZE(htm_json)
    cdef Py_ssize_t ulen = PyBytes_GET_SIZE(htu_json)
    cdef Py_ssize_t alen = _optional_len(ath)
    cdef Py_ssize_t nlen = _optional_len(nonce_json)
    # one integer of at most 20 characters, 56 bytes of fixed punctuation at most
    cdef Py_ssize_t cap = _b64len(jlen) + mlen + ulen + _b64len(alen) + nlen + 20 + 64
    cdef unsigned char* claims = <unsigned char*>PyMem_Malloc(cap)
    cdef Py_ssize_t c = 0
    if claims == NULL:
        raise MemoryError()
    try:
        c += _put(claims + c, b'{"jti":"', 8)
        c += _b64enc(<const unsigned char*>PyBytes_AS_STRING(jti), jlen, claims + c)
        c += _put(claims + c, b'","htm":', 8)
        c += _put(claims + c, PyBytes_AS_STRING(htm_json), mlen)
        c += _put(claims + c, b',"htu":', 7)
        c += _put(claims + c, PyBytes_AS_STRING(htu_json), ulen)
        c += _put(claims + c, b',"iat":', 7)
        c += _put_int(iat, claims + c)
        if ath is not None:
            c += _put(claims + c, b',"ath":"', 8)
            c += _b64enc(<const unsigned char*>PyBytes_AS_STRING(ath), alen, claims + c)
            claims[c] = c'"'
            c += 1
        if nonce_json is not None:
            c += _put(claims + c, b',"nonce":', 9)
            c += _put(claims + c, PyBytes_AS_STRING(nonce_json), nlen)
        claims[c] = c'}'
        c += 1
        out = PyBytes_FromStringAndSize(NULL, hlen + 1 + _b64len(c))
        buf = <unsigned char*>PyBytes_AS_STRING(out)
        memcpy(buf, PyBytes_AS_STRING(header_b64), hlen)
        buf[hlen] = c'.'
        _b64enc(claims, c, buf + hlen + 1)
    finally:
        PyMem_Free(claims)
    return out


def dpop_signing_input(bytes header_b64 not None, bytes jti not None, bytes htm_json not None,
                       bytes htu_json not None, long long iat, ath, nonce_json):
    """``header_b64 "." b64url(claims)`` of a DPoP proof (RFC 9449 §4.2).

    The claims are ``{"jti":"<b64url(jti)>","htm":<htm_json>,"htu":<htu_json>,
    "iat":<iat>`` then ``,"ath":"<b64url(ath)>"`` when ``ath`` (the token's
    SHA-256) is given and ``,"nonce":<nonce_json>`` when given, then ``}``.
    The ``*_json`` values are JSON strings (quotes included), copied as they are.
    """
    return _dpop_input(header_b64, jti, htm_json, htu_json, iat, ath, nonce_json)


def dpop_proof(bytes header_b64 not None, bytes jti not None, bytes htm_json not None,
               bytes htu_json not None, long long iat, ath, nonce_json, sign, int ec_size):
    """One whole DPoP proof: the claims of ``dpop_signing_input``, signed and assembled."""
    if not _is_ascii(<const unsigned char*>PyBytes_AS_STRING(header_b64), PyBytes_GET_SIZE(header_b64)):
        header_b64.decode("ascii")
    signing_input = _dpop_input(header_b64, jti, htm_json, htu_json, iat, ath, nonce_json)
    return _compact(signing_input, _call_sign(sign, signing_input), ec_size, True)


cdef inline bytes _dpop_part(object of, object value):
    part = of(value)
    if type(part) is not bytes:
        raise TypeError("the DPoP claim functions must return bytes")
    return <bytes>part


cdef class _DPoPProver:
    cdef bytes header_b64
    cdef object clock, entropy, sign, htm_of, htu_of, ath_of, nonce_of
    cdef int ec_size

    def __call__(self, method, url, access_token, nonce):
        cdef bytes htm = _dpop_part(self.htm_of, method)
        cdef bytes htu = _dpop_part(self.htu_of, url)
        cdef object ath = None if access_token is None else _dpop_part(self.ath_of, access_token)
        cdef object nonce_json = None if nonce is None else _dpop_part(self.nonce_of, nonce)
        cdef long long now = _floor_clock(self.clock())
        jti = self.entropy()
        if type(jti) is not bytes:
            raise TypeError("entropy() must return bytes")
        signing_input = _dpop_input(self.header_b64, jti, htm, htu, now, ath, nonce_json)
        return _compact(signing_input, _call_sign(self.sign, signing_input), self.ec_size, True)


def dpop_prover(bytes header_b64 not None, clock, entropy, sign, int ec_size,
                htm_of, htu_of, ath_of, nonce_of):
    """``prove(method, url, access_token, nonce)``: a whole DPoP proof in one call.

    Everything per signer is bound once: the header, clock, entropy, the
    signature, and the functions from the caller's values to the kernel's
    (``htm_of(method)`` and ``htu_of(url)`` return JSON strings,
    ``ath_of(token)`` the token's SHA-256, ``nonce_of(nonce)`` a JSON string;
    they validate, and may cache). ``iat`` = floor(clock()), ``jti`` = entropy().
    """
    header_b64.decode("ascii")
    cdef _DPoPProver bound = _DPoPProver.__new__(_DPoPProver)
    bound.header_b64, bound.clock, bound.entropy, bound.sign = header_b64, clock, entropy, sign
    bound.ec_size = ec_size
    bound.htm_of, bound.htu_of, bound.ath_of, bound.nonce_of = htm_of, htu_of, ath_of, nonce_of
    return bound


cdef extern from "Python.h":
    object PyObject_GenericGetDict(object o, void* context)
    ctypedef struct PyObject
    PyObject* PyDict_GetItem(object p, object key)
    bint PyDict_CheckExact(object p)


cdef class _PathCounts:
    """How many calls took jwtmint's path (``fast``) and how many PyJWT's (``fallback``);
    ``class_checks``: how many times a class was compared with its patch-time copy."""
    cdef public long long fast
    cdef public long long fallback
    cdef public long long class_checks


def path_counts():
    """New counters of the calls that took jwtmint's path (``fast``) and PyJWT's (``fallback``)."""
    return _PathCounts()


cdef inline bint _is_hmac(str name):
    return len(name) >= 2 and name[0] == u'H' and name[1] == u'S'


cdef bint _plain_secret(object key, str name) except -1:
    """A ``str`` HMAC secret jwtmint and PyJWT read alike: no armour, nothing PyJWT could
    parse as DER or JSON (``_pure_pyjwt.SECRET_LEADS`` documents the first characters)."""
    cdef Py_ssize_t i, n
    cdef Py_UCS4 c
    if type(key) is not str or not _is_hmac(name):
        return False
    n = len(<str>key)
    if n:
        c = (<str>key)[0]
        if (c == u'0' or c == u'{' or c == u'[' or c == u' ' or c == u'\t' or c == u'\r'
                or c == u'\n' or c == u'\ufeff'):
            return False
    for i in range(min(n, 4)):
        if (<str>key)[i] == u'\x00':
            return False
    return u"----" not in <str>key


cdef extern from *:
    """
    /* The type's version tag: CPython gives a type a new one, never an old one again, after
       it or one of its bases changes, and 0 while it has none; its specialised attribute
       lookups rely on this. Unique from 3.11 on (older releases may hand a tag out again:
       0 there, so every call compares); from 3.13 the valid-tag flag is no longer kept
       (a tag of 0 says "none"). A lookup (any name) gives a type without a tag a new one. */
    static unsigned int jm_type_tag(PyObject *type) {
    #if PY_VERSION_HEX < 0x030B0000
        (void)type;
        return 0;
    #else
        PyTypeObject *t = (PyTypeObject *)type;
    #if PY_VERSION_HEX < 0x030D0000
        if (!(t->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) return 0;
    #endif
        return t->tp_version_tag;
    #endif
    }
    static unsigned int jm_type_tag_now(PyObject *type, PyObject *name) {
        (void)_PyType_Lookup((PyTypeObject *)type, name);
        return jm_type_tag(type);
    }
    /* The namespace a class's __dict__ shows (a heap type's own dict, borrowed), or NULL. */
    static PyObject *jm_type_dict(PyObject *type) {
        return PyType_HasFeature((PyTypeObject *)type, Py_TPFLAGS_HEAPTYPE)
            ? ((PyTypeObject *)type)->tp_dict : NULL;
    }
    """
    unsigned int jm_type_tag(object type)
    unsigned int jm_type_tag_now(object type, object name)
    PyObject* jm_type_dict(object type)


cdef class _ClassState:
    """A class, a copy of its namespace and its MRO at patch time (``PyJWTSpec.classes``)."""
    cdef object cls
    cdef dict namespace
    cdef tuple mro
    #: the class's version tag when it was last found as copied (0: compare it next time)
    cdef unsigned int tag

    cdef bint unchanged(self, _PathCounts counts) except -1:
        cdef unsigned int tag = jm_type_tag(self.cls)
        if tag != 0 and tag == self.tag:
            return True
        counts.class_checks += 1
        tag = jm_type_tag_now(self.cls, "__init__")  # the tag of the state compared below
        cdef PyObject* own = jm_type_dict(self.cls)
        if own == NULL or not PyDict_CheckExact(<object>own):
            return False  # not a class of Python code: never PyJWT's
        cdef dict now = <dict>own
        if self.cls.__mro__ != self.mro or len(now) != len(self.namespace):
            return False
        for name, value in self.namespace.items():
            # borrowed, and only compared: the lookups run no Python code (str keys)
            if PyDict_GetItem(now, name) != <PyObject*>value:
                return False
        if tag != 0 and jm_type_tag(self.cls) == tag:
            self.tag = tag
        return True


cdef bint _all_unchanged(tuple states, _PathCounts counts) except -1:
    for state in states:
        if not (<_ClassState>state).unchanged(counts):
            return False
    return True


cdef tuple _class_states(object classes):
    cdef _ClassState state
    cdef list states = []
    for cls, namespace, mro in classes:
        state = _ClassState.__new__(_ClassState)
        state.cls, state.namespace, state.mro = cls, namespace, mro
        states.append(state)
    return tuple(states)


cdef inline bint _disjoint(dict attributes, frozenset names):
    for name in attributes:
        if name in names:
            return False
    return True


cdef class _PyJWTGuard:
    """The checks of ``_pure_pyjwt`` (which documents them), on the spec's objects. A class is
    compared with its patch-time copy once per version of the class (see jm_type_tag), the
    instances on every call."""
    cdef object pyjwt_class, pyjws_class, unset
    cdef tuple classes
    cdef frozenset jwt_names, jws_names
    #: per algorithm name: (PyJWT's class for it, its _ClassState tuple, its object's attributes)
    cdef dict algorithms

    cdef object name_of(self, object algorithm, object headers):
        cdef object name = "HS256" if algorithm is self.unset else algorithm
        cdef object from_headers
        if type(headers) is dict:
            from_headers = (<dict>headers).get("alg")
            if from_headers is not None:
                if type(from_headers) is not str:
                    return None
                if len(<str>from_headers):
                    name = from_headers
        elif headers is not None:
            return None
        return name if type(name) is str else None

    cdef bint made_by_pyjwt(self, _PathCounts counts, object obj, object payload,
                            str name) except -1:
        if type(obj) is not self.pyjwt_class or type(payload) is not dict:
            return False
        if not _all_unchanged(self.classes, counts):
            return False
        # the classes as at patch time (no descriptor for these names, header_typ "JWT": the
        # spec says so) and no class attribute shadowed on the instances: so the instances'
        # own dicts answer as getattr would, at a fraction of its cost
        attributes = PyObject_GenericGetDict(obj, NULL)
        if type(attributes) is not dict or not _disjoint(<dict>attributes, self.jwt_names):
            return False  # a __dict__ replaced by a mapping of another class: PyJWT's
        jws = (<dict>attributes).get("_jws")
        if type(jws) is not self.pyjws_class:
            return False
        attributes = PyObject_GenericGetDict(jws, NULL)
        if type(attributes) is not dict or not _disjoint(<dict>attributes, self.jws_names):
            return False
        valid = (<dict>attributes).get("_valid_algs")
        algorithms = (<dict>attributes).get("_algorithms")
        if type(valid) is not set or name not in <set>valid or type(algorithms) is not dict:
            return False
        own = self.algorithms.get(name)
        registered = (<dict>algorithms).get(name)
        if own is None or type(registered) is not (<tuple>own)[0]:
            return False
        if not _all_unchanged((<tuple>own)[1], counts):
            return False
        return PyObject_GenericGetDict(registered, NULL) == (<tuple>own)[2]


def pyjwt_encoder(spec, _PathCounts counts not None):
    """``encode(self, payload, key, algorithm, headers, json_encoder, sort_headers)``, every
    argument given, with ``PyJWT.encode``'s outcome; ``counts`` counts the two paths.
    ``patch_pyjwt`` puts it behind ``PyJWT.encode``'s own signature."""
    cdef _PyJWTGuard guard = _PyJWTGuard.__new__(_PyJWTGuard)
    guard.pyjwt_class, guard.pyjws_class, guard.unset = spec.pyjwt_class, spec.pyjws_class, spec.unset
    guard.classes = _class_states(spec.classes)
    guard.jwt_names, guard.jws_names = frozenset(spec.jwt_names), frozenset(spec.jws_names)
    guard.algorithms = {name: (kind, _class_states(classes), state)
                        for name, (kind, classes, state) in spec.algorithms.items()}
    cdef object original = spec.original, sign = spec.sign, plain_key = spec.plain_key
    cdef object unset = spec.unset
    cdef set key_classes = spec.key_classes
    cdef object declined = spec.declined, remember = spec.remember
    # the holder's dict, in the C closure: never in a Python frame's locals
    cdef dict refused = spec.refused.entries
    cdef Py_ssize_t refused_limit = spec.refused.limit

    def encode(self, payload, key, algorithm, headers, json_encoder, sort_headers):
        # every argument given, positionally: patch_pyjwt's Python trampoline, with
        # PyJWT.encode's signature, parses the call (and words its errors as PyJWT does)
        cdef object name = guard.name_of(algorithm, headers)
        cdef bint by_value
        if (
            name is not None
            and guard.made_by_pyjwt(counts, self, payload, <str>name)
            and (
                _plain_secret(key, <str>name)
                or (type(key) in key_classes and not _is_hmac(<str>name))
                or plain_key(key, _is_hmac(<str>name))
            )
        ):
            # a str/bytes key jwtmint refused for this algorithm goes straight to PyJWT
            by_value = type(key) is str or type(key) is bytes
            if not (refused and by_value and (type(key), key, name) in refused):
                try:
                    token = sign(payload, key, name, headers, json_encoder, sort_headers)
                except declined as exc:
                    if by_value and isinstance(exc, remember) and len(refused) < refused_limit:
                        refused[type(key), key, name] = True
                else:
                    counts.fast += 1
                    return token
        counts.fallback += 1
        return original(self, payload, key, algorithm, headers, json_encoder, sort_headers)

    return encode
