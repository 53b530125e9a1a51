// RAII owners for the OpenSSL objects the tests create: every test frees what it makes, so that
// the ASan/LSan runs point at leaks in simaccel and not in the tests.
#pragma once

#include <memory>
#include <string>

#include <openssl/async.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace simaccel::test {

template <auto Fn> struct Free {
    template <class T> void operator()(T *p) const noexcept { Fn(p); }
};

using BnPtr = std::unique_ptr<BIGNUM, Free<BN_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Free<EVP_PKEY_CTX_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, Free<EVP_MD_CTX_free>>;
using EvpMdPtr = std::unique_ptr<EVP_MD, Free<EVP_MD_free>>;
using LibCtxPtr = std::unique_ptr<OSSL_LIB_CTX, Free<OSSL_LIB_CTX_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Free<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Free<OSSL_PARAM_free>>;
using WaitCtxPtr = std::unique_ptr<ASYNC_WAIT_CTX, Free<ASYNC_WAIT_CTX_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Free<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Free<SSL_free>>;
using X509Ptr = std::unique_ptr<X509, Free<X509_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, Free<X509_NAME_free>>;
using BioPtr = std::unique_ptr<BIO, Free<BIO_free_all>>;
// Legacy objects: only the software reference (sw_ref.h) uses them, to compute without any engine.
using RsaPtr = std::unique_ptr<RSA, Free<RSA_free>>;
using EcKeyPtr = std::unique_ptr<EC_KEY, Free<EC_KEY_free>>;
using EcPointPtr = std::unique_ptr<EC_POINT, Free<EC_POINT_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Free<ECDSA_SIG_free>>;

// Returns every error on the thread's queue as one line, and empties the queue: for failure
// messages.
std::string drain_errors();

} // namespace simaccel::test
