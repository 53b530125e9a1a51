// Key, certificate and software-reference helpers (see keys.h).
#include "keys.h"

#include <ctime>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>

namespace simaccel::test {

EvpPkeyPtr make_rsa_key(const Frontend &f, unsigned bits) {
    return EvpPkeyPtr(EVP_PKEY_Q_keygen(f.libctx(), f.propq(), "RSA", static_cast<size_t>(bits)));
}

EvpPkeyPtr make_ec_key(const Frontend &f, const char *group) {
    return EvpPkeyPtr(EVP_PKEY_Q_keygen(f.libctx(), f.propq(), "EC", group));
}

EvpPkeyPtr make_ec_public(const Frontend &f, const char *group, std::span<const unsigned char> point) {
    ParamBldPtr bld(OSSL_PARAM_BLD_new());
    if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()))
        return nullptr;
    ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(f.libctx(), "EC", f.propq()));
    EVP_PKEY *key = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
        return nullptr;
    return EvpPkeyPtr(key);
}

Bytes random_bytes(std::size_t n) {
    Bytes b(n);
    if (RAND_bytes(b.data(), static_cast<int>(n)) != 1)
        b.clear();
    return b;
}

Bytes digest(const char *md, std::span<const unsigned char> data) {
    Bytes out(EVP_MAX_MD_SIZE);
    unsigned len = 0;
    EvpMdPtr m(EVP_MD_fetch(nullptr, md, nullptr));
    if (!m || !EVP_Digest(data.data(), data.size(), out.data(), &len, m.get(), nullptr))
        return {};
    out.resize(len);
    return out;
}

X509Ptr make_self_signed(const Frontend &f, EVP_PKEY *key, const char *cn) {
    return make_self_signed(f.libctx(), f.propq(), key, cn);
}

X509Ptr make_self_signed(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key, const char *cn) {
    X509Ptr x(X509_new_ex(libctx, propq));
    if (!x || !X509_set_version(x.get(), X509_VERSION_3) ||
        !ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1) ||
        !X509_gmtime_adj(X509_getm_notBefore(x.get()), -60) ||
        !X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600) || !X509_set_pubkey(x.get(), key))
        return nullptr;
    // A name of our own: OpenSSL 4 returns the certificate's subject as const.
    X509NamePtr name(X509_NAME_new());
    if (!name ||
        !X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_ASC,
                                    reinterpret_cast<const unsigned char *>(cn), -1, -1, 0) ||
        !X509_set_subject_name(x.get(), name.get()) || !X509_set_issuer_name(x.get(), name.get()))
        return nullptr;
    EvpMdCtxPtr md(EVP_MD_CTX_new());
    if (!md ||
        EVP_DigestSignInit_ex(md.get(), nullptr, "SHA256", libctx, propq, key, nullptr) != 1 ||
        X509_sign_ctx(x.get(), md.get()) <= 0)
        return nullptr;
    return x;
}

EvpPkeyPtr recode_key(const EVP_PKEY *key, OSSL_LIB_CTX *into, bool priv) {
    unsigned char *der = nullptr;
    const int len = priv ? i2d_PrivateKey(key, &der) : i2d_PUBKEY(key, &der);
    if (len <= 0)
        return nullptr;
    const unsigned char *p = der;
    EVP_PKEY *out = priv ? d2i_AutoPrivateKey_ex(nullptr, &p, len, into, nullptr)
                         : d2i_PUBKEY_ex(nullptr, &p, len, into, nullptr);
    OPENSSL_free(der);
    return EvpPkeyPtr(out);
}

X509Ptr recode_cert(X509 *x, OSSL_LIB_CTX *into) {
    unsigned char *der = nullptr;
    const int len = i2d_X509(x, &der);
    if (len <= 0)
        return nullptr;
    X509Ptr out(X509_new_ex(into, nullptr));
    X509 *raw = out.get();
    const unsigned char *p = der;
    const bool ok = raw != nullptr && d2i_X509(&raw, &p, len) != nullptr;
    OPENSSL_free(der);
    return ok ? std::move(out) : nullptr;
}

Bytes flipped(std::span<const unsigned char> in, std::size_t i) {
    Bytes out(in.begin(), in.end());
    if (!out.empty())
        out[i == SIZE_MAX ? out.size() / 2 : i] ^= 0x01;
    return out;
}

namespace sw {

RsaPtr rsa_public(const EVP_PKEY *key) {
    BIGNUM *n = nullptr, *e = nullptr;
    if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) ||
        !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e)) {
        BN_free(n);
        BN_free(e);
        return nullptr;
    }
    RsaPtr rsa(RSA_new());
    // RSA_new() attaches the default engine; RSA_set_method releases it.
    if (!rsa || !RSA_set_method(rsa.get(), RSA_PKCS1_OpenSSL()) || !RSA_set0_key(rsa.get(), n, e, nullptr)) {
        BN_free(n);
        BN_free(e);
        return nullptr;
    }
    return rsa;
}

namespace {
int group_nid(const EVP_PKEY *key) {
    char name[64];
    size_t len = 0;
    if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len))
        return NID_undef;
    return OBJ_txt2nid(name) != NID_undef ? OBJ_txt2nid(name) : EC_curve_nist2nid(name);
}

EcKeyPtr ec_software(int nid) {
    EcKeyPtr k(EC_KEY_new_by_curve_name(nid));
    // As for RSA: drop the engine's EC_KEY_METHOD for OpenSSL's own.
    if (!k || !EC_KEY_set_method(k.get(), EC_KEY_OpenSSL()))
        return nullptr;
    return k;
}
} // namespace

EcKeyPtr ec_public(const EVP_PKEY *key) {
    int nid = group_nid(key);
    unsigned char pub[256];
    size_t len = 0;
    if (nid == NID_undef ||
        !EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &len))
        return nullptr;
    EcKeyPtr k = ec_software(nid);
    if (!k || !EC_KEY_oct2key(k.get(), pub, len, nullptr))
        return nullptr;
    return k;
}

EcKeyPtr ec_generate(int nid) {
    EcKeyPtr k = ec_software(nid);
    if (!k || !EC_KEY_generate_key(k.get()))
        return nullptr;
    return k;
}

bool rsa_verify_pkcs1(RSA *rsa, int md_nid, std::span<const unsigned char> hash,
                      std::span<const unsigned char> sig) {
    bool ok = RSA_verify(md_nid, hash.data(), static_cast<unsigned>(hash.size()), sig.data(),
                         static_cast<unsigned>(sig.size()), rsa) == 1;
    ERR_clear_error();
    return ok;
}

bool rsa_verify_pss(RSA *rsa, const EVP_MD *md, std::span<const unsigned char> hash,
                    std::span<const unsigned char> sig) {
    Bytes em(RSA_size(rsa));
    bool ok = sig.size() == em.size() &&
              RSA_public_decrypt(static_cast<int>(sig.size()), sig.data(), em.data(), rsa,
                                 RSA_NO_PADDING) == static_cast<int>(em.size()) &&
              RSA_verify_PKCS1_PSS_mgf1(rsa, hash.data(), md, md, em.data(),
                                        RSA_PSS_SALTLEN_AUTO) == 1;
    ERR_clear_error();
    return ok;
}

Bytes rsa_encrypt_oaep(RSA *rsa, const EVP_MD *md, std::span<const unsigned char> msg) {
    Bytes em(RSA_size(rsa)), ct(RSA_size(rsa));
    if (RSA_padding_add_PKCS1_OAEP_mgf1(em.data(), static_cast<int>(em.size()), msg.data(),
                                        static_cast<int>(msg.size()), nullptr, 0, md, md) != 1 ||
        RSA_public_encrypt(static_cast<int>(em.size()), em.data(), ct.data(), rsa, RSA_NO_PADDING) !=
            static_cast<int>(ct.size()))
        return {};
    return ct;
}

Bytes rsa_encrypt_pkcs1(RSA *rsa, std::span<const unsigned char> msg) {
    Bytes ct(RSA_size(rsa));
    if (RSA_public_encrypt(static_cast<int>(msg.size()), msg.data(), ct.data(), rsa,
                           RSA_PKCS1_PADDING) != static_cast<int>(ct.size()))
        return {};
    return ct;
}

Bytes rsa_encrypt_raw(RSA *rsa, std::span<const unsigned char> msg) {
    Bytes ct(RSA_size(rsa));
    if (RSA_public_encrypt(static_cast<int>(msg.size()), msg.data(), ct.data(), rsa,
                           RSA_NO_PADDING) != static_cast<int>(ct.size()))
        return {};
    return ct;
}

bool ecdsa_verify(EC_KEY *key, std::span<const unsigned char> hash, std::span<const unsigned char> der) {
    bool ok = ECDSA_verify(0, hash.data(), static_cast<int>(hash.size()), der.data(),
                           static_cast<int>(der.size()), key) == 1;
    ERR_clear_error();
    return ok;
}

Bytes ecdh(EC_KEY *own, const EC_KEY *peer) {
    const EC_GROUP *g = EC_KEY_get0_group(own);
    Bytes out((EC_GROUP_get_degree(g) + 7) / 8);
    int n = ECDH_compute_key(out.data(), out.size(), EC_KEY_get0_public_key(peer), own, nullptr);
    if (n <= 0)
        return {};
    out.resize(static_cast<std::size_t>(n));
    return out;
}

Bytes ec_point_octets(const EC_KEY *key) {
    unsigned char *buf = nullptr;
    size_t n = EC_KEY_key2buf(key, POINT_CONVERSION_UNCOMPRESSED, &buf, nullptr);
    Bytes out(buf, buf + n);
    OPENSSL_free(buf);
    return out;
}

} // namespace sw
} // namespace simaccel::test
