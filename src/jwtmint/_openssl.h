/* OpenSSL's libcrypto called directly, where cryptography's per-call work costs most.
 *
 * HMAC-SHA-256/384/512 (RFC 2104) over states pre-fed with the key pads.
 *
 * With OpenSSL's headers at build time (JWTMINT_HAVE_OPENSSL), the low-level
 * SHA functions are used: they run OpenSSL's assembly (SHA-NI where the CPU
 * has it) with no EVP object, allocation or provider lookup per call. A
 * signature is two struct copies and two Update/Final pairs. Without them,
 * jm_openssl_available is 0 and the extension uses hashlib, like the Python twin.
 *
 * ECDSA (RFC 7518 §3.4) on an EC_KEY, and its precomputation: the half of a
 * signature that does not depend on the message (a random k, k^-1 mod n and
 * r = (k*G).x) made ahead of time by ECDSA_sign_setup, then one signature per
 * pair with ECDSA_do_sign_ex. A pair must sign exactly once: two signatures
 * with one k give the private key away (jm_ecdsa_sign_pair frees it, whatever happens).
 */
#ifndef JWTMINT_OPENSSL_H
#define JWTMINT_OPENSSL_H

#include <stddef.h>
#include <string.h>
#ifdef _WIN32
#include <process.h>
#define jm_getpid() ((long)_getpid())
#else
#include <unistd.h>
#define jm_getpid() ((long)getpid())
#endif

/* Zero memory in a way the compiler cannot drop as a dead store. */
static void jm_wipe(void *data, size_t size)
{
    volatile unsigned char *p = (volatile unsigned char *)data;
    while (size--)
        *p++ = 0;
}

#ifdef JWTMINT_HAVE_OPENSSL
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>

static const int jm_openssl_available = 1;

typedef struct {
    int bits;
    SHA256_CTX inner256, outer256;
    SHA512_CTX inner512, outer512;
} jm_hmac;

/* A fresh hash state of the given size that has absorbed one padded key block. */
static void jm_prime(int bits, const unsigned char *block, size_t size,
                     SHA256_CTX *state256, SHA512_CTX *state512)
{
    if (bits == 256) {
        SHA256_Init(state256);
        SHA256_Update(state256, block, size);
    } else if (bits == 384) {
        SHA384_Init(state512);
        SHA384_Update(state512, block, size);
    } else {
        SHA512_Init(state512);
        SHA512_Update(state512, block, size);
    }
}

static int jm_hmac_init(jm_hmac *h, int bits, const unsigned char *key, size_t key_len)
{
    unsigned char block[128], hashed[64];
    size_t block_size = bits == 256 ? 64 : 128;
    size_t i;

    if (bits != 256 && bits != 384 && bits != 512)
        return -1;
    memset(h, 0, sizeof(*h));
    h->bits = bits;
    if (key_len > block_size) {  /* RFC 2104 §2: hash keys longer than a block */
        if (bits == 256)
            SHA256(key, key_len, hashed), key_len = 32;
        else if (bits == 384)
            SHA384(key, key_len, hashed), key_len = 48;
        else
            SHA512(key, key_len, hashed), key_len = 64;
        key = hashed;
    }
    memset(block, 0, sizeof(block));
    memcpy(block, key, key_len);
    for (i = 0; i < block_size; i++)
        block[i] ^= 0x36;
    jm_prime(bits, block, block_size, &h->inner256, &h->inner512);
    for (i = 0; i < block_size; i++)
        block[i] ^= 0x36 ^ 0x5c;
    jm_prime(bits, block, block_size, &h->outer256, &h->outer512);
    /* OPENSSL_cleanse, not memset: the compiler may drop stores to dead locals */
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(hashed, sizeof(hashed));
    return 0;
}

static void jm_hmac_clear(jm_hmac *h)
{
    OPENSSL_cleanse(h, sizeof(*h));
}

/* Writes the MAC (32, 48 or 64 bytes) to out; returns its length. */
static size_t jm_hmac_sign(const jm_hmac *h, const unsigned char *data, size_t len, unsigned char *out)
{
    unsigned char inner[64];
    if (h->bits == 256) {
        SHA256_CTX ctx = h->inner256;
        SHA256_Update(&ctx, data, len);
        SHA256_Final(inner, &ctx);
        ctx = h->outer256;
        SHA256_Update(&ctx, inner, 32);
        SHA256_Final(out, &ctx);
        OPENSSL_cleanse(&ctx, sizeof(ctx));
        return 32;
    } else {
        size_t size = h->bits == 384 ? 48 : 64;
        SHA512_CTX ctx = h->inner512;
        if (h->bits == 384) {
            SHA384_Update(&ctx, data, len);
            SHA384_Final(inner, &ctx);
            ctx = h->outer512;
            SHA384_Update(&ctx, inner, size);
            SHA384_Final(out, &ctx);
        } else {
            SHA512_Update(&ctx, data, len);
            SHA512_Final(inner, &ctx);
            ctx = h->outer512;
            SHA512_Update(&ctx, inner, size);
            SHA512_Final(out, &ctx);
        }
        OPENSSL_cleanse(&ctx, sizeof(ctx));
        return size;
    }
}

/* SHA-256, -384 or -512 (by the JWS algorithm's size) of data into digest; its length. */
static int jm_digest(int bits, const unsigned char *data, size_t len, unsigned char *digest)
{
    if (bits == 256)
        return SHA256(data, len, digest), 32;
    if (bits == 384)
        return SHA384(data, len, digest), 48;
    return SHA512(data, len, digest), 64;
}

/* ECDSA (RFC 7518 §3.4) with an EC_KEY loaded once from SEC1 DER: one hash and one
 * ECDSA_do_sign per signature, no EVP context, and the caller may drop the GIL. */
typedef struct {
    EC_KEY *key;
    int bits;
} jm_ecdsa;

static int jm_ecdsa_init(jm_ecdsa *e, const unsigned char *der, long der_len, int bits)
{
    const unsigned char *p = der;
    int nid = bits == 256 ? NID_X9_62_prime256v1 : bits == 384 ? NID_secp384r1
            : bits == 512 ? NID_secp521r1 : NID_undef;
    e->bits = bits;
    e->key = nid != NID_undef ? d2i_ECPrivateKey(NULL, &p, der_len) : NULL;
    /* the JWS curve for the hash, and nothing wider: jm_ecdsa_sign writes at most
     * ECDSA_size() bytes, which for P-521 is 139 (callers give 148) */
    if (e->key != NULL
        && (EC_GROUP_get_curve_name(EC_KEY_get0_group(e->key)) != nid || ECDSA_size(e->key) > 148)) {
        EC_KEY_free(e->key);
        e->key = NULL;
    }
    return e->key ? 0 : -1;
}

static void jm_ecdsa_free(jm_ecdsa *e)
{
    if (e->key)
        EC_KEY_free(e->key);  /* clears the private scalar */
    e->key = NULL;
}

/* The DER signature (at most 2 * 66 + 9 bytes) into out; its length, or -1. */
static int jm_ecdsa_sign(const jm_ecdsa *e, const unsigned char *data, size_t len, unsigned char *out)
{
    unsigned char digest[64];
    int digest_len = jm_digest(e->bits, data, len, digest), n;
    ECDSA_SIG *sig;
    unsigned char *p = out;
    sig = ECDSA_do_sign(digest, digest_len, e->key);
    if (sig == NULL)
        return -1;
    n = i2d_ECDSA_SIG(sig, &p);
    ECDSA_SIG_free(sig);
    return n;
}

/* A precomputed (k^-1 mod n, r) pair: secret until used, then worthless. */
typedef struct {
    BIGNUM *kinv;
    BIGNUM *r;
} jm_ecdsa_pair;

static void jm_ecdsa_pair_clear(jm_ecdsa_pair *pair)
{
    BN_clear_free(pair->kinv);  /* NULL-safe; zeroes the limbs before freeing */
    BN_clear_free(pair->r);
    pair->kinv = NULL;
    pair->r = NULL;
}

/* Up to n pairs into pairs[0..n): how many were made (the first ones; the rest stay
 * NULL). k comes from OpenSSL's DRBG (ECDSA_sign_setup with no digest draws it with
 * BN_priv_rand_range); the scalar multiplication and inversion are OpenSSL's
 * constant-time ones. Touches no Python object: call it with the GIL released. */
static int jm_ecdsa_precompute(const jm_ecdsa *e, jm_ecdsa_pair *pairs, int n)
{
    int made = 0;
    BN_CTX *ctx;
    if (e->key == NULL)
        return 0;
    ctx = BN_CTX_secure_new();  /* one scratch context for the batch, not one per pair */
    if (ctx == NULL)
        return 0;
    ERR_set_mark();
    for (; made < n; made++) {
        pairs[made].kinv = NULL;
        pairs[made].r = NULL;
        if (!ECDSA_sign_setup(e->key, ctx, &pairs[made].kinv, &pairs[made].r)) {
            jm_ecdsa_pair_clear(&pairs[made]);
            break;
        }
    }
    ERR_pop_to_mark();  /* a failure is reported by the count: leave the error queue as it was */
    BN_CTX_free(ctx);  /* its temporaries held k: BN_CTX_free clears them */
    return made;
}

/* Like jm_ecdsa_sign, with a precomputed pair, which it consumes (frees) in every
 * case. *used is 1 when the pair made the signature; 0 when OpenSSL refused it
 * (s == 0, probability ~2^-256: with caller-given values it does not retry, it
 * fails with EC_R_NEED_NEW_SETUP_VALUES) and a normal signature was made instead. */
static int jm_ecdsa_sign_pair(const jm_ecdsa *e, jm_ecdsa_pair *pair, const unsigned char *data,
                              size_t len, unsigned char *out, int *used)
{
    unsigned char digest[64];
    int digest_len = jm_digest(e->bits, data, len, digest), n;
    ECDSA_SIG *sig;
    unsigned char *p = out;
    ERR_set_mark();
    sig = ECDSA_do_sign_ex(digest, digest_len, pair->kinv, pair->r, e->key);
    jm_ecdsa_pair_clear(pair);
    *used = sig != NULL;
    if (sig == NULL) {
        ERR_pop_to_mark();  /* leave the thread's error queue as it was */
        sig = ECDSA_do_sign(digest, digest_len, e->key);
        if (sig == NULL)
            return -1;
    } else {
        ERR_clear_last_mark();
    }
    n = i2d_ECDSA_SIG(sig, &p);
    ECDSA_SIG_free(sig);
    return n;
}

#else

static const int jm_openssl_available = 0;
typedef struct { int bits; } jm_hmac;
static int jm_hmac_init(jm_hmac *h, int bits, const unsigned char *key, size_t key_len)
{ (void)h; (void)bits; (void)key; (void)key_len; return -1; }
static size_t jm_hmac_sign(const jm_hmac *h, const unsigned char *data, size_t len, unsigned char *out)
{ (void)h; (void)data; (void)len; (void)out; return 0; }
static void jm_hmac_clear(jm_hmac *h) { (void)h; }
typedef struct { void *key; int bits; } jm_ecdsa;
static int jm_ecdsa_init(jm_ecdsa *e, const unsigned char *der, long der_len, int bits)
{ (void)der; (void)der_len; e->key = NULL; e->bits = bits; return -1; }
static void jm_ecdsa_free(jm_ecdsa *e) { (void)e; }
static int jm_ecdsa_sign(const jm_ecdsa *e, const unsigned char *data, size_t len, unsigned char *out)
{ (void)e; (void)data; (void)len; (void)out; return -1; }
typedef struct { void *kinv; void *r; } jm_ecdsa_pair;
static void jm_ecdsa_pair_clear(jm_ecdsa_pair *pair) { pair->kinv = NULL; pair->r = NULL; }
static int jm_ecdsa_precompute(const jm_ecdsa *e, jm_ecdsa_pair *pairs, int n)
{ (void)e; (void)pairs; (void)n; return 0; }
static int jm_ecdsa_sign_pair(const jm_ecdsa *e, jm_ecdsa_pair *pair, const unsigned char *data,
                              size_t len, unsigned char *out, int *used)
{ (void)e; (void)data; (void)len; (void)out; jm_ecdsa_pair_clear(pair); *used = 0; return -1; }

#endif
#endif
