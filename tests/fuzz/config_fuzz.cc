// The configuration fuzz harness (see config_fuzz.h).
#include "config_fuzz.h"

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <openssl/engine.h>
#include <openssl/err.h>

#include "simaccel/config.h"
#include "simaccel/device.h"

namespace simaccel::fuzz {
namespace {

[[noreturn]] void violation(const char *what, std::string_view input, const std::string &detail) {
    std::fprintf(stderr, "config fuzz: %s\n  input: '%.*s'\n  detail: %s\n", what,
                 static_cast<int>(input.size()), input.data(), detail.c_str());
    std::abort();
}

// A refusal must explain itself in the documented form.
void check_refusal(std::string_view input, const std::string &err) {
    if (err.rfind("simaccel: ", 0) != 0)
        violation("refusal without a 'simaccel: ' message", input, err);
}

// Every key prints as text that parses back to the same configuration.
void check_round_trip(const Config &cfg, std::string_view input) {
    for (const ConfigKey &k : config_keys()) {
        const std::string text = k.get(cfg);
        Config again = cfg;
        std::string err;
        if (!k.set(again, text, &err))
            violation("printed value does not parse back", input,
                      std::string(k.name) + "=" + text + ": " + err);
        if (!(again == cfg))
            violation("printed value parses to a different configuration", input,
                      std::string(k.name) + "=" + text);
    }
}

#ifdef OPENSSL_NO_ENGINE
// OpenSSL 4 (or a no-engine build): path 2 is skipped, as without the engine module.
ENGINE *engine() {
    return nullptr;
}
void run_engine(std::string_view, const std::string &, const std::string *) {}
#else
ENGINE *engine() {
    static ENGINE *e = [] {
        ENGINE_load_builtin_engines();
        ENGINE *x = ENGINE_by_id("simaccel");
        if (x != nullptr && !ENGINE_init(x)) {
            ENGINE_free(x);
            x = nullptr;
        }
        ERR_clear_error();
        return x; // kept for the process: the fuzzer never unloads it
    }();
    return e;
}

void run_engine(std::string_view input, const std::string &key, const std::string *value) {
    ENGINE *e = engine();
    if (e == nullptr)
        return;
    // GET_STATS with a NULL pointer writes the stats to stdout: not this harness's subject.
    // The other action commands (POLL, POLL_COUNT, RESET_STATS, DEVICE_RESET, GET_INFLIGHT_COUNT,
    // HEARTBEAT_POLL) run: they return 1 and leave the configuration alone. QAT_Engine's
    // messages that answer through p (GET_NUM_REQUESTS_IN_FLIGHT, ...) refuse a NULL p with an
    // error, as any refusal must.
    // (Compared as OpenSSL sees the name: up to the first NUL.)
    const std::string_view name(key.c_str());
    if (name == "GET_STATS")
        return;
    Device &dev = Device::get();
    const Config before = dev.config();
    const int ok = ENGINE_ctrl_cmd_string(e, key.c_str(), value ? value->c_str() : nullptr, 0);
    const Config after = dev.config();
    if (ok != 1) {
        if (!(after == before))
            violation("refused engine ctrl changed the device configuration", input,
                      config_to_json(before) + " -> " + config_to_json(after));
        if (ERR_peek_error() == 0)
            violation("refused engine ctrl left no error", input, key);
    } else {
        check_round_trip(after, input);
    }
    ERR_clear_error();
    // Back to the defaults: no stats-file, log level or fault settings carry to the next input.
    std::string err;
    if (!(after == Config{}) && !dev.configure(Config{}, &err))
        violation("cannot restore the default configuration", input, err);
}

#endif // OPENSSL_NO_ENGINE

} // namespace

bool engine_available() { return engine() != nullptr; }

void run_one(const std::uint8_t *data, std::size_t size) {
    if (size == 0)
        return;
    const unsigned path = data[0] % 4;
    const std::string text(reinterpret_cast<const char *>(data + 1), size - 1);
    const std::string_view input(text);
    const std::size_t eq = text.find('=');
    const std::string key = text.substr(0, eq);
    const std::string value = eq == std::string::npos ? std::string() : text.substr(eq + 1);

    Config cfg;
    cfg.latency = {LatencySpec::Kind::kFixed, 1000, 0}; // not the default: refusals keep it
    const Config original = cfg;
    std::string err;
    switch (path) {
    case 0:
        if (!config_apply_opts(cfg, input, &err)) {
            check_refusal(input, err);
            if (!(cfg == original))
                violation("refused options were half-applied", input, config_to_json(cfg));
        } else {
            check_round_trip(cfg, input);
            (void)config_to_json(cfg);
        }
        break;
    case 1:
        if (!config_set(cfg, key, value, &err)) {
            check_refusal(input, err);
            if (!(cfg == original))
                violation("refused value changed the configuration", input, config_to_json(cfg));
        } else {
            check_round_trip(cfg, input);
        }
        break;
    case 2:
        run_engine(input, key, &value);
        break;
    case 3:
        run_engine(input, key, nullptr);
        break;
    }
}

} // namespace simaccel::fuzz
