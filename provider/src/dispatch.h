// OSSL_DISPATCH entries from typed functions.
#pragma once

namespace simaccel::provider {

// `Fn` is OpenSSL's function type for the entry (OSSL_FUNC_provider_get_params_fn, ...), given
// explicitly so that the compiler checks the function against it; our noexcept functions
// convert to it implicitly.
template <class Fn> void (*dispatch_fn(Fn *fn) noexcept)(void) {
    return reinterpret_cast<void (*)(void)>(fn);
}

} // namespace simaccel::provider
