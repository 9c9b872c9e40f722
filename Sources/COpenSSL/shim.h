#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <string.h>

/* Function-like macros and small helpers for TLS over memory BIOs (the names say what they wrap). */

static inline int portal_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

/* No renegotiation or compression; idle connections give their buffers back. */
static inline void portal_SSL_CTX_harden(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

static inline int portal_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

/* ALPN on the server: select "h2" or fail the handshake with no_application_protocol. */
static inline int portal_alpn_select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                                        const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl; (void)arg;
    unsigned int i = 0;
    while (i < inlen) {
        unsigned int length = in[i];
        if (i + 1 + length > inlen) break;
        if (length == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + length;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static inline void portal_SSL_CTX_select_alpn_h2(SSL_CTX *ctx) {
    SSL_CTX_set_alpn_select_cb(ctx, portal_alpn_select_h2, NULL);
}

/* Web listeners speak HTTP/2 when the browser offers h2, else HTTP/1.1; a client offering no ALPN gets none. */
static inline int portal_alpn_select_web(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                                         const unsigned char *in, unsigned int inlen, void *arg) {
    if (portal_alpn_select_h2(ssl, out, outlen, in, inlen, arg) == SSL_TLSEXT_ERR_OK) return SSL_TLSEXT_ERR_OK;
    unsigned int i = 0;
    while (i < inlen) {
        unsigned int length = in[i];
        if (i + 1 + length > inlen) break;
        if (length == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + length;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static inline void portal_SSL_CTX_select_alpn_web(SSL_CTX *ctx) {
    SSL_CTX_set_alpn_select_cb(ctx, portal_alpn_select_web, NULL);
}

/* Client certificates are requested and verified, but the handshake goes on whatever the outcome:
   the verdict (SSL_get_verify_result) is judged per call, so callers get a status naming the reason. */
static inline int portal_verify_record_only(int preverified, X509_STORE_CTX *store) {
    (void)preverified; (void)store;
    return 1;
}

static inline void portal_SSL_CTX_request_client_certificates(SSL_CTX *ctx) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, portal_verify_record_only);
}

static inline void portal_SSL_CTX_verify_server(SSL_CTX *ctx) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
}

/* Subject alternative names of a certificate. */
static inline GENERAL_NAMES *portal_X509_subject_alt_names(X509 *cert) {
    return (GENERAL_NAMES *)X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
}

static inline int portal_GENERAL_NAMES_count(const GENERAL_NAMES *names) {
    return sk_GENERAL_NAME_num(names);
}

/* The type (GEN_DNS, GEN_URI, GEN_IPADD, ...) and string value of the name at `index`. */
static inline int portal_GENERAL_NAMES_type(const GENERAL_NAMES *names, int index) {
    return sk_GENERAL_NAME_value(names, index)->type;
}

static inline const ASN1_STRING *portal_GENERAL_NAMES_string(const GENERAL_NAMES *names, int index) {
    return sk_GENERAL_NAME_value(names, index)->d.ia5;
}

static inline void portal_GENERAL_NAMES_free(GENERAL_NAMES *names) {
    GENERAL_NAMES_free(names);
}

static inline unsigned long portal_XN_FLAG_RFC2253(void) {
    return XN_FLAG_RFC2253;
}
