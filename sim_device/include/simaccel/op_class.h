// Operation classes: what the device models separately (latency, offload, stats).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace simaccel {

enum class OpClass : std::uint8_t {
    kRsaPriv,
    kRsaPub,
    kEcdsaSign,
    kEcdsaVerify,
    kEcdh,
    kX25519,
    kX448,
    kEd25519,
    kEd448,
    kEcKeygen,         // EC key pair generation (P-256/384/521, ...): the ECDHE key share
    kX25519Keygen,     // X25519 key pair generation
    kX448Keygen,       // X448 key pair generation
    kDhKeygen,         // finite-field DH (DH, DHX) key pair generation: the FFDHE key share
    kDh,               // finite-field DH derive
    kPrf,              // TLS 1.2 PRF (TLS1-PRF)
    kHkdf,             // HKDF and the TLS 1.3 key schedule (HKDF, TLS13-KDF)
    kAesGcm,           // AES-128-GCM / AES-256-GCM update calls (TLS records) >= cipher-threshold
    kChacha20Poly1305, // ChaCha20-Poly1305 update calls (TLS records) >= cipher-threshold
    kNull,             // device round trip with no work: benchmarks and tests
};

inline constexpr std::size_t kNumOpClasses = 19;
static_assert(kNumOpClasses == static_cast<std::size_t>(OpClass::kNull) + 1,
              "kNumOpClasses must count every OpClass (kNull stays last)");

// The names used in config keys (`latency-rsa-priv`, `offload=rsa-priv,ecdh`) and stats JSON.
inline constexpr std::string_view kOpClassNames[kNumOpClasses] = {
    "rsa-priv", "rsa-pub", "ecdsa-sign", "ecdsa-verify",      "ecdh",        "x25519",    "x448",
    "ed25519",  "ed448",   "ec-keygen",  "x25519-keygen",     "x448-keygen", "dh-keygen", "dh",
    "prf",      "hkdf",    "aes-gcm",    "chacha20-poly1305", "null",
};
static_assert(
    [] {
        for (auto n : kOpClassNames)
            if (n.empty())
                return false;
        return true;
    }(),
    "every op class needs a name in kOpClassNames");

constexpr std::string_view op_class_name(OpClass c) noexcept {
    return kOpClassNames[static_cast<std::size_t>(c)];
}

constexpr std::optional<OpClass> op_class_from_name(std::string_view name) noexcept {
    for (std::size_t i = 0; i < kNumOpClasses; ++i)
        if (kOpClassNames[i] == name)
            return static_cast<OpClass>(i);
    return std::nullopt;
}

constexpr std::size_t index_of(OpClass c) noexcept { return static_cast<std::size_t>(c); }

} // namespace simaccel
