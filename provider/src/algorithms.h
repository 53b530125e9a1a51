// Our algorithm tables: the default provider's, filtered to what we re-export (names.h), with
// property `provider=simaccel` and the expensive entries replaced by the offload wrappers.
#pragma once

#include <openssl/core.h>
#include <openssl/provider.h>

namespace simaccel::provider {

// Builds the tables from `deflt` (a default provider in a private library context). The
// default provider's dispatch tables and names are static data of libcrypto, the same for every
// load, so this runs once per process; later calls return the first result.
[[nodiscard]] bool build_algorithms(OSSL_PROVIDER *deflt) noexcept;

// OSSL_FUNC_provider_query_operation: our table for `operation_id`, or null.
const OSSL_ALGORITHM *algorithms(int operation_id) noexcept;

} // namespace simaccel::provider
