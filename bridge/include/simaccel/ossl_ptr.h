// Owners for OpenSSL objects: std::unique_ptr with a deleter that calls the object's own free
// function, as BoringSSL's bssl::UniquePtr. Header-only, OpenSSL headers only: the engine and
// the tests include it alike.
#pragma once

#include <memory>

#include <openssl/async.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace simaccel {

template <auto Fn> struct Free {
    template <class T> void operator()(T *p) const noexcept { Fn(p); }
};

// Wiped when freed: a BIGNUM may hold a secret (a nonce's inverse, a private exponent).
using BignumPtr = std::unique_ptr<BIGNUM, Free<BN_clear_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Free<EVP_PKEY_CTX_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, Free<EVP_MD_CTX_free>>;
using EvpMdPtr = std::unique_ptr<EVP_MD, Free<EVP_MD_free>>;
using EvpCipherPtr = std::unique_ptr<EVP_CIPHER, Free<EVP_CIPHER_free>>;
using EvpCipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, Free<EVP_CIPHER_CTX_free>>;
using LibCtxPtr = std::unique_ptr<OSSL_LIB_CTX, Free<OSSL_LIB_CTX_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Free<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Free<OSSL_PARAM_free>>;
using WaitCtxPtr = std::unique_ptr<ASYNC_WAIT_CTX, Free<ASYNC_WAIT_CTX_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Free<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Free<SSL_free>>;
using X509Ptr = std::unique_ptr<X509, Free<X509_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, Free<X509_NAME_free>>;
using BioPtr = std::unique_ptr<BIO, Free<BIO_free_all>>;
using EvpKdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, Free<EVP_KDF_CTX_free>>;
// Legacy key objects, deprecated in OpenSSL 3 but what the engine's RSA and EC_KEY methods and
// the tests' software reference work on: declaring their owners is no use of them.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
using RsaPtr = std::unique_ptr<RSA, Free<RSA_free>>;
using EcKeyPtr = std::unique_ptr<EC_KEY, Free<EC_KEY_free>>;
using EcPointPtr = std::unique_ptr<EC_POINT, Free<EC_POINT_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Free<ECDSA_SIG_free>>;
#pragma GCC diagnostic pop

} // namespace simaccel
