// Every algorithm name the provider re-exports from the default provider, in one place.
#pragma once

#include <openssl/core_dispatch.h>

#include "simaccel/op_class.h"

namespace simaccel::provider {

// The property every algorithm of ours carries (contract.md §12); users select us with
// `default_properties = ?provider=simaccel`.
inline constexpr char kProperty[] = "provider=simaccel";

// Key managers passed through unchanged: our keys ARE the default provider's key objects, so a
// key made by us can reach our signature, asym-cipher and keyexch wrappers without an export.
inline constexpr const char *kKeymgmtNames[] = {
    "RSA", "RSA-PSS", "EC", "X25519", "X448", "ED25519", "ED448", "DH", "DHX",
};

// The algorithms whose expensive entries go to the device. Each gets a slot (its index here)
// holding the default provider's own entries; the rest of its dispatch table is re-exported as is.
struct OffloadSpec {
    int operation;    // OSSL_OP_SIGNATURE, OSSL_OP_ASYM_CIPHER, OSSL_OP_KEYEXCH
    const char *name; // the default provider's first algorithm name
    OpClass op_class;
};

inline constexpr OffloadSpec kOffloads[] = {
    {OSSL_OP_SIGNATURE, "RSA", OpClass::kRsaPriv},
    {OSSL_OP_SIGNATURE, "ECDSA", OpClass::kEcdsaSign},
    {OSSL_OP_SIGNATURE, "ED25519", OpClass::kEd25519},
    {OSSL_OP_SIGNATURE, "ED448", OpClass::kEd448},
    {OSSL_OP_ASYM_CIPHER, "RSA", OpClass::kRsaPriv},
    {OSSL_OP_KEYEXCH, "ECDH", OpClass::kEcdh},
    {OSSL_OP_KEYEXCH, "X25519", OpClass::kX25519},
    {OSSL_OP_KEYEXCH, "X448", OpClass::kX448},
    {OSSL_OP_KEYEXCH, "DH", OpClass::kDh},
};

inline constexpr std::size_t kNumOffloads = std::size(kOffloads);

// Key managers whose `gen` (key pair generation) goes to the device; their other entries, and
// parameter-only generation, stay the default provider's (gen_kdf.h).
struct KeygenSpec {
    const char *name; // one of kKeymgmtNames
    OpClass op_class;
};

inline constexpr KeygenSpec kKeygens[] = {
    {"EC", OpClass::kEcKeygen}, {"X25519", OpClass::kX25519Keygen}, {"X448", OpClass::kX448Keygen},
    {"DH", OpClass::kDhKeygen}, {"DHX", OpClass::kDhKeygen},
};

inline constexpr std::size_t kNumKeygens = std::size(kKeygens);

// KDFs re-exported with `derive` on the device: what libssl derives its keys with (TLS 1.2
// PRF, TLS 1.3 key schedule). The other KDFs are not ours.
struct KdfSpec {
    const char *name; // the default provider's first algorithm name
    OpClass op_class;
};

inline constexpr KdfSpec kKdfs[] = {
    {"TLS1-PRF", OpClass::kPrf},
    {"HKDF", OpClass::kHkdf},
    {"TLS13-KDF", OpClass::kHkdf},
};

inline constexpr std::size_t kNumKdfs = std::size(kKdfs);

// AEAD ciphers re-exported with their update and cipher calls on the device when they process
// at least `cipher-threshold` bytes (cipher.h): what libssl encrypts TLS records with.
struct CipherSpec {
    const char *name; // the default provider's first algorithm name
    OpClass op_class;
};

inline constexpr CipherSpec kCiphers[] = {
    {"AES-128-GCM", OpClass::kAesGcm},
    {"AES-256-GCM", OpClass::kAesGcm},
    {"ChaCha20-Poly1305", OpClass::kChacha20Poly1305},
};

inline constexpr std::size_t kNumCiphers = std::size(kCiphers);

} // namespace simaccel::provider
