// The wrapped AEAD ciphers (kCiphers: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305): the default
// provider's implementation does the math, every parameter (the TLS 1.2 AAD and fixed-IV
// controls, tags, IV lengths) is its own; an update or cipher call on at least
// `cipher-threshold` bytes runs on the device through the bridge, smaller ones inline.
//
// Unlike the other wrapped algorithms, the contexts we hand out are ours: a CipherCtx holding
// the default provider's context. An offloaded call works on a duplicate that the request owns
// (contract.md §7: the application may free its context, with its SSL, while the record is in
// the device), and on completion the duplicate, advanced by the call, replaces the original.
#pragma once

#include <openssl/core_dispatch.h>

#include <array>
#include <cstddef>
#include <vector>

#include "names.h"

namespace simaccel::provider {

// The default provider's entries of one cipher of kCiphers. Filled once, before the first table
// that refers to it is handed to the core; read-only afterwards.
struct CipherSlot {
    OpClass op_class = OpClass::kNull;
    OSSL_FUNC_cipher_newctx_fn *newctx = nullptr;
    OSSL_FUNC_cipher_freectx_fn *freectx = nullptr;
    OSSL_FUNC_cipher_dupctx_fn *dupctx = nullptr;
    OSSL_FUNC_cipher_encrypt_init_fn *encrypt_init = nullptr;
    OSSL_FUNC_cipher_decrypt_init_fn *decrypt_init = nullptr;
    OSSL_FUNC_cipher_update_fn *update = nullptr;
    OSSL_FUNC_cipher_final_fn *final = nullptr;
    OSSL_FUNC_cipher_cipher_fn *cipher = nullptr;
    OSSL_FUNC_cipher_get_ctx_params_fn *get_ctx_params = nullptr;
    OSSL_FUNC_cipher_set_ctx_params_fn *set_ctx_params = nullptr;
    OSSL_FUNC_cipher_gettable_ctx_params_fn *gettable_ctx_params = nullptr;
    OSSL_FUNC_cipher_settable_ctx_params_fn *settable_ctx_params = nullptr;
#ifdef OSSL_FUNC_CIPHER_ENCRYPT_SKEY_INIT // OpenSSL 3.5: opaque symmetric keys
    OSSL_FUNC_cipher_encrypt_skey_init_fn *encrypt_skey_init = nullptr;
    OSSL_FUNC_cipher_decrypt_skey_init_fn *decrypt_skey_init = nullptr;
#endif
};

extern std::array<CipherSlot, kNumCiphers> g_cipher_slots;

// Rewrites the default provider's dispatch table of kCiphers slot `i` into ours (every entry
// that takes a context unwraps it; entries we do not know are left out, since they would get
// our context). Empty when the default provider's table lacks what the wrapper needs (newctx,
// freectx, dupctx): the cipher is then not re-exported.
std::vector<OSSL_DISPATCH> patch_cipher(std::size_t i, const OSSL_DISPATCH *in);

} // namespace simaccel::provider
