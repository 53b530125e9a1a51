// The wrapped key generation and KDF entries: the default provider's keymgmt GEN (key pair
// generation of EC, X25519, X448, DH, DHX) and KDF DERIVE (TLS1-PRF, HKDF, TLS13-KDF), run on
// the device through the bridge. Every other entry of these dispatch tables is the default
// provider's own.
#pragma once

#include <openssl/core_dispatch.h>

#include <array>
#include <cstddef>
#include <utility>

#include "names.h"

namespace simaccel::provider {

// The default provider's entries of one key manager of kKeygens. Filled once, before the first
// table that refers to it is handed to the core; read-only afterwards.
struct KeygenSlot {
    OpClass op_class = OpClass::kNull;
    OSSL_FUNC_keymgmt_gen_init_fn *gen_init = nullptr;
    OSSL_FUNC_keymgmt_gen_fn *gen = nullptr;
    OSSL_FUNC_keymgmt_gen_cleanup_fn *gen_cleanup = nullptr;
    OSSL_FUNC_keymgmt_free_fn *free = nullptr;
};

// The default provider's entries of one KDF of kKdfs.
struct KdfSlot {
    OpClass op_class = OpClass::kNull;
    OSSL_FUNC_kdf_dupctx_fn *dupctx = nullptr; // absent in some versions: then none is made
    OSSL_FUNC_kdf_freectx_fn *freectx = nullptr;
    OSSL_FUNC_kdf_derive_fn *derive = nullptr;
    OSSL_FUNC_kdf_set_ctx_params_fn *set_ctx_params = nullptr;
};

extern std::array<KeygenSlot, kNumKeygens> g_keygen_slots;
extern std::array<KdfSlot, kNumKdfs> g_kdf_slots;

void *gen_init(const KeygenSlot &slot, void *provctx, int selection,
               const OSSL_PARAM params[]) noexcept;
void *gen(const KeygenSlot &slot, void *genctx, OSSL_CALLBACK *cb, void *cbarg) noexcept;
void gen_cleanup(const KeygenSlot &slot, void *genctx) noexcept;
int kdf_derive(const KdfSlot &slot, void *kctx, unsigned char *key, size_t keylen,
               const OSSL_PARAM params[]) noexcept;

// One function per slot, as in offload.h: each knows its slot, the contexts stay the default
// provider's.
template <std::size_t I>
void *gen_init_entry(void *provctx, int selection, const OSSL_PARAM params[]) noexcept {
    return gen_init(g_keygen_slots[I], provctx, selection, params);
}
template <std::size_t I> void *gen_entry(void *genctx, OSSL_CALLBACK *cb, void *cbarg) noexcept {
    return gen(g_keygen_slots[I], genctx, cb, cbarg);
}
template <std::size_t I> void gen_cleanup_entry(void *genctx) noexcept {
    gen_cleanup(g_keygen_slots[I], genctx);
}
template <std::size_t I>
int kdf_derive_entry(void *kctx, unsigned char *key, size_t keylen,
                     const OSSL_PARAM params[]) noexcept {
    return kdf_derive(g_kdf_slots[I], kctx, key, keylen, params);
}

struct KeygenEntryTable {
    std::array<OSSL_FUNC_keymgmt_gen_init_fn *, kNumKeygens> gen_init;
    std::array<OSSL_FUNC_keymgmt_gen_fn *, kNumKeygens> gen;
    std::array<OSSL_FUNC_keymgmt_gen_cleanup_fn *, kNumKeygens> gen_cleanup;
};

template <std::size_t... I>
constexpr KeygenEntryTable make_keygen_entry_table(std::index_sequence<I...>) noexcept {
    return {{&gen_init_entry<I>...}, {&gen_entry<I>...}, {&gen_cleanup_entry<I>...}};
}

template <std::size_t... I>
constexpr std::array<OSSL_FUNC_kdf_derive_fn *, kNumKdfs>
make_kdf_entry_table(std::index_sequence<I...>) noexcept {
    return {&kdf_derive_entry<I>...};
}

inline constexpr KeygenEntryTable kKeygenEntries =
    make_keygen_entry_table(std::make_index_sequence<kNumKeygens>());
inline constexpr std::array<OSSL_FUNC_kdf_derive_fn *, kNumKdfs> kKdfEntries =
    make_kdf_entry_table(std::make_index_sequence<kNumKdfs>());

} // namespace simaccel::provider
