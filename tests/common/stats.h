// The one reader of the device's stats JSON (contract.md §13) for every test: the text as each
// front end hands it out, and its counters and configuration looked up by name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <openssl/engine.h>
#include <openssl/provider.h>

#include "json.h"

namespace simaccel::test {

// The engine's GET_STATS text (with the latency histograms when `histograms`); nullopt with a
// reason in *err.
std::optional<std::string> engine_stats_text(ENGINE *e, bool histograms, std::string *err);
// The provider's "simaccel-stats" parameter; nullopt with a reason in *err.
std::optional<std::string> provider_stats_text(OSSL_PROVIDER *p, std::string *err);

// The per op class counters of the stats JSON (contract.md §13). Missing fields read as 0.
struct OpCounters {
    std::uint64_t submitted = 0, completed = 0, failed = 0, busy = 0, retried = 0, fallback = 0,
                  inline_sw = 0;
};

class StatsSnapshot {
  public:
    StatsSnapshot() = default;
    explicit StatsSnapshot(Json doc) : doc_(std::move(doc)) {}
    bool valid() const noexcept { return doc_.has_value(); }
    // `op_class` as in the stats: "rsa-priv", "rsa-pub", "ecdsa-sign", "ecdsa-verify", "ecdh".
    OpCounters op(std::string_view op_class) const;
    // A device-wide number: "inflight", "max_inflight", "workers".
    std::optional<std::uint64_t> device(std::string_view key) const;
    // A resolved configuration value from the "config" object: "queue-depth" -> "1024".
    std::optional<std::string> config(std::string_view key) const;
    // strict (docs/strict.md): "rule count" for every rule of the `contract` section counted at
    // least once, "; "-separated; empty when none; nullopt without a contract section.
    std::optional<std::string> contract_violations() const;

  private:
    std::optional<Json> doc_;
};

// `text` parsed; adds a gtest failure (not fatal) and returns an invalid snapshot when it is not
// JSON.
StatsSnapshot parse_stats(const std::string &text);
// The text read and parsed; a gtest failure (not fatal) when either fails.
StatsSnapshot engine_stats(ENGINE *e);
StatsSnapshot provider_stats(OSSL_PROVIDER *p);

} // namespace simaccel::test
