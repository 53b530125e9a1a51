// Keys, digests and certificates made through a Frontend (so that they are backed by simaccel),
// and the software reference that checks their results with stock OpenSSL code only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "frontend.h"
#include "ossl_ptr.h"

namespace simaccel::test {

using Bytes = std::vector<unsigned char>;

// RSA (`bits`) or EC (`group`: "P-256", "P-384", "P-521") key pair made in the frontend's library
// context. Made after the frontend is active, so the engine's methods back it.
EvpPkeyPtr make_rsa_key(const Frontend &f, unsigned bits);
EvpPkeyPtr make_ec_key(const Frontend &f, const char *group);
// An EC public key from its encoded point, for EVP_PKEY_derive_set_peer.
EvpPkeyPtr make_ec_public(const Frontend &f, const char *group, std::span<const unsigned char> point);

Bytes random_bytes(std::size_t n);
Bytes digest(const char *md, std::span<const unsigned char> data);

// A self-signed certificate for `key`, valid from a minute ago for an hour, CN=`cn`, signed with
// SHA-256 through the frontend (or in `libctx` with `propq`).
X509Ptr make_self_signed(const Frontend &f, EVP_PKEY *key, const char *cn);
X509Ptr make_self_signed(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key, const char *cn);

// `key` decoded again in library context `into` (a DER round trip): its public half, or with
// `priv` the whole key. A key of a reference context checks results with stock OpenSSL.
EvpPkeyPtr recode_key(const EVP_PKEY *key, OSSL_LIB_CTX *into, bool priv = false);
// The same certificate decoded in `into`.
X509Ptr recode_cert(X509 *x, OSSL_LIB_CTX *into);

// Stock OpenSSL arithmetic with no engine and no simaccel provider: legacy key objects switched
// to OpenSSL's built-in methods (RSA_PKCS1_OpenSSL, EC_KEY_OpenSSL). A key created while the
// engine is default picks the engine up in every library context (rsa_new_intern), so copying
// the public key into another OSSL_LIB_CTX would not be independent; this is.
namespace sw {

RsaPtr rsa_public(const EVP_PKEY *key);  // nullptr on failure
EcKeyPtr ec_public(const EVP_PKEY *key); // nullptr on failure
EcKeyPtr ec_generate(int nid);           // a software key pair

bool rsa_verify_pkcs1(RSA *rsa, int md_nid, std::span<const unsigned char> hash,
                      std::span<const unsigned char> sig);
bool rsa_verify_pss(RSA *rsa, const EVP_MD *md, std::span<const unsigned char> hash,
                    std::span<const unsigned char> sig);
// Encryptions; empty on failure. `raw` takes a message of exactly RSA_size bytes below n.
Bytes rsa_encrypt_oaep(RSA *rsa, const EVP_MD *md, std::span<const unsigned char> msg);
Bytes rsa_encrypt_pkcs1(RSA *rsa, std::span<const unsigned char> msg);
Bytes rsa_encrypt_raw(RSA *rsa, std::span<const unsigned char> msg);

bool ecdsa_verify(EC_KEY *key, std::span<const unsigned char> hash, std::span<const unsigned char> der);
// The shared secret (x coordinate, field size) of `own` (private) with `peer` (public).
Bytes ecdh(EC_KEY *own, const EC_KEY *peer);
Bytes ec_point_octets(const EC_KEY *key);

} // namespace sw

// A copy with one bit of byte `i` flipped (i = middle by default).
Bytes flipped(std::span<const unsigned char> in, std::size_t i = SIZE_MAX);

} // namespace simaccel::test
