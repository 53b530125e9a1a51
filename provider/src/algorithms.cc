#include "algorithms.h"

#include <openssl/core_dispatch.h>

#include <strings.h>

#include <cstring>

#include <list>
#include <mutex>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

#include "cipher.h"
#include "dispatch.h"
#include "gen_kdf.h"
#include "offload.h"

namespace simaccel::provider {
namespace {

struct Tables {
    std::vector<OSSL_ALGORITHM> keymgmt, signature, asym_cipher, keyexch, kdf, cipher;
    std::list<std::vector<OSSL_DISPATCH>> patched; // stable storage for the rewritten tables
};

// Never destroyed: the core may query us from its atexit cleanup, after static destructors.
Tables *g_tables = nullptr;
std::mutex g_build_mu;

// `RSA:rsaEncryption:1.2.840.113549.1.1.1` -> `RSA`
std::string_view first_name(const char *names) noexcept {
    std::string_view all(names);
    return all.substr(0, all.find(':'));
}

bool same_name(std::string_view a, const char *b) noexcept {
    return a.size() == std::strlen(b) && strncasecmp(a.data(), b, a.size()) == 0;
}

// Copies the default provider's dispatch table of slot `i`, recording its entries in the slot
// and pointing the expensive ones at our wrappers.
std::vector<OSSL_DISPATCH> patch(std::size_t i, const OSSL_DISPATCH *in) {
    Slot &slot = g_slots[i];
    slot.op_class = kOffloads[i].op_class;
    const int operation = kOffloads[i].operation;
    std::vector<OSSL_DISPATCH> out;
    for (const OSSL_DISPATCH *d = in; d->function_id != 0; ++d) {
        OSSL_DISPATCH e = *d;
        if (operation == OSSL_OP_SIGNATURE) {
            switch (d->function_id) {
            case OSSL_FUNC_SIGNATURE_NEWCTX:
                slot.sig_newctx = OSSL_FUNC_signature_newctx(d);
                e.function = dispatch_fn<OSSL_FUNC_signature_newctx_fn>(kEntries.sig_newctx[i]);
                break;
            case OSSL_FUNC_SIGNATURE_DUPCTX:
                slot.dupctx = OSSL_FUNC_signature_dupctx(d);
                break;
            case OSSL_FUNC_SIGNATURE_FREECTX:
                slot.freectx = OSSL_FUNC_signature_freectx(d);
                break;
            case OSSL_FUNC_SIGNATURE_SIGN:
                slot.sign = OSSL_FUNC_signature_sign(d);
                e.function = dispatch_fn<OSSL_FUNC_signature_sign_fn>(kEntries.sign[i]);
                break;
            case OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL:
                slot.digest_sign_final = OSSL_FUNC_signature_digest_sign_final(d);
                e.function = dispatch_fn<OSSL_FUNC_signature_digest_sign_final_fn>(
                    kEntries.digest_sign_final[i]);
                break;
            case OSSL_FUNC_SIGNATURE_DIGEST_SIGN:
                slot.digest_sign = OSSL_FUNC_signature_digest_sign(d);
                e.function =
                    dispatch_fn<OSSL_FUNC_signature_digest_sign_fn>(kEntries.digest_sign[i]);
                break;
            default:
                break;
            }
        } else if (operation == OSSL_OP_ASYM_CIPHER) {
            switch (d->function_id) {
            case OSSL_FUNC_ASYM_CIPHER_DUPCTX:
                slot.dupctx = OSSL_FUNC_asym_cipher_dupctx(d);
                break;
            case OSSL_FUNC_ASYM_CIPHER_FREECTX:
                slot.freectx = OSSL_FUNC_asym_cipher_freectx(d);
                break;
            case OSSL_FUNC_ASYM_CIPHER_DECRYPT:
                slot.decrypt = OSSL_FUNC_asym_cipher_decrypt(d);
                e.function = dispatch_fn<OSSL_FUNC_asym_cipher_decrypt_fn>(kEntries.decrypt[i]);
                break;
            default:
                break;
            }
        } else if (operation == OSSL_OP_KEYEXCH) {
            switch (d->function_id) {
            case OSSL_FUNC_KEYEXCH_DUPCTX:
                slot.dupctx = OSSL_FUNC_keyexch_dupctx(d);
                break;
            case OSSL_FUNC_KEYEXCH_FREECTX:
                slot.freectx = OSSL_FUNC_keyexch_freectx(d);
                break;
            case OSSL_FUNC_KEYEXCH_DERIVE:
                slot.derive = OSSL_FUNC_keyexch_derive(d);
                e.function = dispatch_fn<OSSL_FUNC_keyexch_derive_fn>(kEntries.derive[i]);
                break;
            default:
                break;
            }
        }
        out.push_back(e);
    }
    out.push_back({0, nullptr});
    return out;
}

// Copies the default provider's key manager of kKeygens slot `i`, with gen_init, gen and
// gen_cleanup pointed at our wrappers (gen_kdf.h).
std::vector<OSSL_DISPATCH> patch_keygen(std::size_t i, const OSSL_DISPATCH *in) {
    KeygenSlot &slot = g_keygen_slots[i];
    slot.op_class = kKeygens[i].op_class;
    std::vector<OSSL_DISPATCH> out;
    for (const OSSL_DISPATCH *d = in; d->function_id != 0; ++d)
        if (d->function_id == OSSL_FUNC_KEYMGMT_FREE)
            slot.free = OSSL_FUNC_keymgmt_free(d);
    // Generation is wrapped only when every entry it needs is there.
    for (const OSSL_DISPATCH *d = in; d->function_id != 0; ++d) {
        if (d->function_id == OSSL_FUNC_KEYMGMT_GEN_INIT)
            slot.gen_init = OSSL_FUNC_keymgmt_gen_init(d);
        else if (d->function_id == OSSL_FUNC_KEYMGMT_GEN)
            slot.gen = OSSL_FUNC_keymgmt_gen(d);
        else if (d->function_id == OSSL_FUNC_KEYMGMT_GEN_CLEANUP)
            slot.gen_cleanup = OSSL_FUNC_keymgmt_gen_cleanup(d);
    }
    const bool wrap = slot.free != nullptr && slot.gen_init != nullptr && slot.gen != nullptr &&
                      slot.gen_cleanup != nullptr;
    for (const OSSL_DISPATCH *d = in; d->function_id != 0; ++d) {
        OSSL_DISPATCH e = *d;
        if (wrap && d->function_id == OSSL_FUNC_KEYMGMT_GEN_INIT)
            e.function = dispatch_fn<OSSL_FUNC_keymgmt_gen_init_fn>(kKeygenEntries.gen_init[i]);
        else if (wrap && d->function_id == OSSL_FUNC_KEYMGMT_GEN)
            e.function = dispatch_fn<OSSL_FUNC_keymgmt_gen_fn>(kKeygenEntries.gen[i]);
        else if (wrap && d->function_id == OSSL_FUNC_KEYMGMT_GEN_CLEANUP)
            e.function =
                dispatch_fn<OSSL_FUNC_keymgmt_gen_cleanup_fn>(kKeygenEntries.gen_cleanup[i]);
        out.push_back(e);
    }
    out.push_back({0, nullptr});
    return out;
}

// Copies the default provider's KDF of kKdfs slot `i`, with derive pointed at our wrapper.
std::vector<OSSL_DISPATCH> patch_kdf(std::size_t i, const OSSL_DISPATCH *in) {
    KdfSlot &slot = g_kdf_slots[i];
    slot.op_class = kKdfs[i].op_class;
    std::vector<OSSL_DISPATCH> out;
    for (const OSSL_DISPATCH *d = in; d->function_id != 0; ++d) {
        OSSL_DISPATCH e = *d;
        switch (d->function_id) {
        case OSSL_FUNC_KDF_DUPCTX:
            slot.dupctx = OSSL_FUNC_kdf_dupctx(d);
            break;
        case OSSL_FUNC_KDF_FREECTX:
            slot.freectx = OSSL_FUNC_kdf_freectx(d);
            break;
        case OSSL_FUNC_KDF_SET_CTX_PARAMS:
            slot.set_ctx_params = OSSL_FUNC_kdf_set_ctx_params(d);
            break;
        case OSSL_FUNC_KDF_DERIVE:
            slot.derive = OSSL_FUNC_kdf_derive(d);
            e.function = dispatch_fn<OSSL_FUNC_kdf_derive_fn>(kKdfEntries[i]);
            break;
        default:
            break;
        }
        out.push_back(e);
    }
    out.push_back({0, nullptr});
    return out;
}

std::vector<OSSL_ALGORITHM> *table_for(Tables &t, int operation) noexcept {
    switch (operation) {
    case OSSL_OP_KEYMGMT:
        return &t.keymgmt;
    case OSSL_OP_SIGNATURE:
        return &t.signature;
    case OSSL_OP_ASYM_CIPHER:
        return &t.asym_cipher;
    case OSSL_OP_KEYEXCH:
        return &t.keyexch;
    case OSSL_OP_KDF:
        return &t.kdf;
    case OSSL_OP_CIPHER:
        return &t.cipher;
    default:
        return nullptr;
    }
}

void collect(Tables &t, OSSL_PROVIDER *deflt, int operation) {
    int no_cache = 0;
    const OSSL_ALGORITHM *algs = OSSL_PROVIDER_query_operation(deflt, operation, &no_cache);
    std::vector<OSSL_ALGORITHM> &out = *table_for(t, operation);
    for (const OSSL_ALGORITHM *a = algs; a != nullptr && a->algorithm_names != nullptr; ++a) {
        const std::string_view name = first_name(a->algorithm_names);
        OSSL_ALGORITHM ours = *a;
        ours.property_definition = kProperty;
        if (operation == OSSL_OP_KEYMGMT) {
            bool wanted = false;
            for (const char *k : kKeymgmtNames)
                wanted = wanted || same_name(name, k);
            if (!wanted)
                continue;
            for (std::size_t i = 0; i < kNumKeygens; ++i)
                if (same_name(name, kKeygens[i].name)) {
                    ours.implementation =
                        t.patched.emplace_back(patch_keygen(i, a->implementation)).data();
                    break;
                }
            out.push_back(ours);
            continue;
        }
        if (operation == OSSL_OP_CIPHER) {
            for (std::size_t i = 0; i < kNumCiphers; ++i)
                if (same_name(name, kCiphers[i].name)) {
                    std::vector<OSSL_DISPATCH> patched = patch_cipher(i, a->implementation);
                    if (!patched.empty()) {
                        ours.implementation = t.patched.emplace_back(std::move(patched)).data();
                        out.push_back(ours);
                    }
                    break;
                }
            continue;
        }
        if (operation == OSSL_OP_KDF) {
            for (std::size_t i = 0; i < kNumKdfs; ++i)
                if (same_name(name, kKdfs[i].name)) {
                    ours.implementation =
                        t.patched.emplace_back(patch_kdf(i, a->implementation)).data();
                    out.push_back(ours);
                    break;
                }
            continue;
        }
        for (std::size_t i = 0; i < kNumOffloads; ++i) {
            if (kOffloads[i].operation != operation || !same_name(name, kOffloads[i].name))
                continue;
            ours.implementation = t.patched.emplace_back(patch(i, a->implementation)).data();
            out.push_back(ours);
            break;
        }
    }
    out.push_back({nullptr, nullptr, nullptr, nullptr});
    OSSL_PROVIDER_unquery_operation(deflt, operation, algs);
}

} // namespace

bool build_algorithms(OSSL_PROVIDER *deflt) noexcept {
    std::lock_guard lock(g_build_mu);
    if (g_tables != nullptr)
        return true;
    try {
        auto *t = new Tables;
        for (int op : {OSSL_OP_KEYMGMT, OSSL_OP_SIGNATURE, OSSL_OP_ASYM_CIPHER, OSSL_OP_KEYEXCH,
                       OSSL_OP_KDF, OSSL_OP_CIPHER})
            collect(*t, deflt, op);
        g_tables = t;
    } catch (const std::bad_alloc &) {
        return false; // a partial Tables leaks; the slots it filled are rewritten on retry
    }
    return true;
}

const OSSL_ALGORITHM *algorithms(int operation_id) noexcept {
    std::lock_guard lock(g_build_mu);
    if (g_tables == nullptr)
        return nullptr;
    const std::vector<OSSL_ALGORITHM> *t = table_for(*g_tables, operation_id);
    return t != nullptr ? t->data() : nullptr;
}

} // namespace simaccel::provider
