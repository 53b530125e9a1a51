// The wrapped entries: the default provider's SIGN, DIGEST_SIGN_FINAL, DIGEST_SIGN, DECRYPT and
// DERIVE, run on the device through the bridge. Everything else in a dispatch table is the
// default provider's own entry, so every padding, digest and parameter rule stays OpenSSL's.
#pragma once

#include <openssl/core_dispatch.h>

#include <array>
#include <cstddef>
#include <utility>

#include "names.h"

namespace simaccel::provider {

// The default provider's entries of one offloaded algorithm (one row of kOffloads). Filled once,
// before the first table that refers to it is handed to the core; read-only afterwards.
struct Slot {
    OpClass op_class = OpClass::kNull;
    OSSL_FUNC_signature_newctx_fn *sig_newctx = nullptr;
    void *(*dupctx)(void *) = nullptr;
    void (*freectx)(void *) = nullptr;
    OSSL_FUNC_signature_sign_fn *sign = nullptr;
    OSSL_FUNC_signature_digest_sign_final_fn *digest_sign_final = nullptr;
    OSSL_FUNC_signature_digest_sign_fn *digest_sign = nullptr;
    OSSL_FUNC_asym_cipher_decrypt_fn *decrypt = nullptr;
    OSSL_FUNC_keyexch_derive_fn *derive = nullptr;
};

extern std::array<Slot, kNumOffloads> g_slots;

enum class Entry : unsigned char { kSign, kDigestSignFinal, kDigestSign, kDecrypt, kDerive };

// Runs entry `e` of `slot` for the algorithm context `vctx` on the device; a size query
// (`out == nullptr`) goes straight to the default provider. Returns the entry's 1/0.
int offload(const Slot &slot, Entry e, void *vctx, unsigned char *out, size_t *outlen,
            size_t outsize, const unsigned char *in, size_t inlen) noexcept;

// The property query of a signature context is what the default provider uses to fetch the
// digest inside our private library context, which holds the default provider only. The
// application's query was meant for its own context (`provider=simaccel` matches nothing in
// ours), so the inner context gets none: every fetch there resolves to the default provider.
template <std::size_t I> void *sig_newctx_entry(void *provctx, const char *) noexcept {
    return g_slots[I].sig_newctx(provctx, nullptr);
}

// One function per slot and entry, so that each knows its slot without a context of its own:
// the algorithm contexts we hand out are the default provider's, untouched.
template <std::size_t I>
int sign_entry(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
               const unsigned char *tbs, size_t tbslen) noexcept {
    return offload(g_slots[I], Entry::kSign, vctx, sig, siglen, sigsize, tbs, tbslen);
}

template <std::size_t I>
int digest_sign_final_entry(void *vctx, unsigned char *sig, size_t *siglen,
                            size_t sigsize) noexcept {
    return offload(g_slots[I], Entry::kDigestSignFinal, vctx, sig, siglen, sigsize, nullptr, 0);
}

template <std::size_t I>
int digest_sign_entry(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                      const unsigned char *tbs, size_t tbslen) noexcept {
    return offload(g_slots[I], Entry::kDigestSign, vctx, sig, siglen, sigsize, tbs, tbslen);
}

template <std::size_t I>
int decrypt_entry(void *vctx, unsigned char *out, size_t *outlen, size_t outsize,
                  const unsigned char *in, size_t inlen) noexcept {
    return offload(g_slots[I], Entry::kDecrypt, vctx, out, outlen, outsize, in, inlen);
}

template <std::size_t I>
int derive_entry(void *vctx, unsigned char *secret, size_t *secretlen, size_t outlen) noexcept {
    return offload(g_slots[I], Entry::kDerive, vctx, secret, secretlen, outlen, nullptr, 0);
}

// The entries of every slot, indexed by slot, typed by OpenSSL's own function types so that
// the compiler checks each signature.
struct EntryTable {
    std::array<OSSL_FUNC_signature_newctx_fn *, kNumOffloads> sig_newctx;
    std::array<OSSL_FUNC_signature_sign_fn *, kNumOffloads> sign;
    std::array<OSSL_FUNC_signature_digest_sign_final_fn *, kNumOffloads> digest_sign_final;
    std::array<OSSL_FUNC_signature_digest_sign_fn *, kNumOffloads> digest_sign;
    std::array<OSSL_FUNC_asym_cipher_decrypt_fn *, kNumOffloads> decrypt;
    std::array<OSSL_FUNC_keyexch_derive_fn *, kNumOffloads> derive;
};

template <std::size_t... I>
constexpr EntryTable make_entry_table(std::index_sequence<I...>) noexcept {
    return {{&sig_newctx_entry<I>...},  {&sign_entry<I>...},    {&digest_sign_final_entry<I>...},
            {&digest_sign_entry<I>...}, {&decrypt_entry<I>...}, {&derive_entry<I>...}};
}

inline constexpr EntryTable kEntries = make_entry_table(std::make_index_sequence<kNumOffloads>());

} // namespace simaccel::provider
