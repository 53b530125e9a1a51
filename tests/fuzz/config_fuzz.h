// The configuration fuzz harness, shared by the libFuzzer target (config_fuzzer.cc, clang only)
// and the replay test that runs every corpus and regression input in every build.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace simaccel::fuzz {

// Runs one input through the parsers and checks their invariants; aborts (after printing what
// broke) on a violation, so that libFuzzer and the replay test both report it as a crash.
//
// Input layout: byte 0 picks the path, the rest is the text.
//   0  config_apply_opts(cfg, text)                          (SIMACCEL_OPTS)
//   1  config_set(cfg, key, value), text split at the first '='
//   2  ENGINE_ctrl_cmd_string(engine, key, value, 0), same split (skipped without the engine)
//   3  the same with a NULL value
// Invariants: a refusal leaves the configuration unchanged and says "simaccel: ..." naming
// what was wrong; an accepted value prints (ConfigKey::get) as text that parses back to the
// same configuration; the engine's device configuration is unchanged after a refused ctrl.
void run_one(const std::uint8_t *data, std::size_t size);

// Loads the engine for path 2 (OPENSSL_ENGINES); false if it is not there.
bool engine_available();

} // namespace simaccel::fuzz
