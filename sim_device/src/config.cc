// The configuration's public API: look-up by key or ctrl name, config_set, SIMACCEL_OPTS
// parsing, validation and the JSON rendering. The keys themselves are in config_keys.cc.
#include <new>
#include <utility>

#include "config_internal.h"

namespace simaccel {

using namespace detail;

namespace {

void append_json_string(std::string &out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        switch (c) {
        case '"':
            out += "\\\"";
            continue;
        case '\\':
            out += "\\\\";
            continue;
        case '\n':
            out += "\\n";
            continue;
        case '\r':
            out += "\\r";
            continue;
        case '\t':
            out += "\\t";
            continue;
        default:
            break;
        }
        if (c < 0x20 || c == 0x7f) {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
            continue;
        }
        if (c < 0x80) {
            out += static_cast<char>(c);
            continue;
        }
        // JSON text must be UTF-8: copy a well-formed sequence, replace a stray byte (a path
        // need not be UTF-8) with U+FFFD.
        const std::size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        bool ok = len != 0 && c <= 0xf4 && i + len <= s.size();
        for (std::size_t k = 1; ok && k < len; ++k)
            ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
        if (ok && len >= 3) {
            const auto c1 = static_cast<unsigned char>(s[i + 1]);
            // Overlong forms, UTF-16 surrogates and code points above U+10FFFF.
            ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0) &&
                 !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
        }
        if (ok) {
            out.append(s.substr(i, len));
            i += len - 1;
        } else {
            out += "\\ufffd";
        }
    }
    out += '"';
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Public API

const ConfigKey *find_config_key(std::string_view name) noexcept {
    for (const auto &k : config_keys())
        if (k.name == name)
            return &k;
    return nullptr;
}

const ConfigKey *find_config_key_by_ctrl(std::string_view ctrl) noexcept {
    for (const auto &k : config_keys())
        if (k.ctrl_name == ctrl)
            return &k;
    return nullptr;
}

bool config_set(Config &cfg, std::string_view key, std::string_view value, std::string *err) {
    const auto name = trim(key);
    // The ctrl spelling is accepted too, so QUEUE_DEPTH=8 in SIMACCEL_OPTS does what it says.
    const ConfigKey *k = find_config_key(name);
    if (!k)
        k = find_config_key_by_ctrl(name);
    if (!k) {
        set_error(err, [&](std::string &m) {
            m += "unknown key ";
            append_quoted(m, name, 64);
        });
        return false;
    }
    return k->set(cfg, value, err);
}

bool config_apply_opts(Config &cfg, std::string_view opts, std::string *err) {
    try {
        Config tmp = cfg; // all or nothing: commit only when every token has applied
        std::size_t i = 0;
        while (i < opts.size()) {
            while (i < opts.size() && is_space(opts[i]))
                ++i;
            const std::size_t start = i;
            while (i < opts.size() && !is_space(opts[i]))
                ++i;
            const auto token = opts.substr(start, i - start);
            if (token.empty())
                break;
            const auto eq = token.find('=');
            if (eq == std::string_view::npos || eq == 0) {
                set_error(err, [&](std::string &m) {
                    m += "option ";
                    append_quoted(m, token, 64);
                    m += " is not key=value";
                });
                return false;
            }
            if (!config_set(tmp, token.substr(0, eq), token.substr(eq + 1), err))
                return false;
        }
        cfg = std::move(tmp);
        return true;
    } catch (const std::bad_alloc &) {
        set_error(err, [](std::string &m) { m += "out of memory applying options"; });
        return false;
    }
}

bool config_validate(const Config &cfg, std::string *err) {
    try {
        // A Config is a plain struct that code may fill directly: re-parse each key's text to
        // apply the same range checks as config_set.
        for (const auto &k : config_keys()) {
            Config probe = cfg;
            std::string e;
            if (!k.set(probe, k.get(cfg), &e)) {
                set_error(err, [&](std::string &m) {
                    m += "invalid configuration: ";
                    m += std::string_view(e).starts_with("simaccel: ") ? e.substr(10) : e;
                });
                return false;
            }
        }
        const auto &pm = cfg.poll_mode;
        const std::uint64_t slots = std::uint64_t{cfg.queue_depth} * cfg.instances;
        if (pm.kind == PollMode::Kind::kCoalesce && pm.batch > slots) {
            set_error(err, [&](std::string &m) {
                m += "poll-mode 'coalesce:" + std::to_string(pm.batch) +
                     ",...': the batch can never fill: at most queue-depth * instances = " +
                     std::to_string(slots) + " requests are in the device";
            });
            return false;
        }
        if (cfg.fault_busy >= 1 && cfg.max_retries == 0) {
            set_error(err, [](std::string &m) {
                m += "fault-busy 1 with max-retries 0 (unlimited) would retry every request "
                     "forever; set max-retries or lower fault-busy";
            });
            return false;
        }
        return true;
    } catch (const std::bad_alloc &) {
        set_error(err, [](std::string &m) { m += "out of memory validating the configuration"; });
        return false;
    }
}

std::string config_to_json(const Config &cfg) {
    std::string out = "{";
    for (const auto &k : config_keys()) {
        if (out.size() > 1)
            out += ',';
        append_json_string(out, k.name);
        out += ':';
        append_json_string(out, k.get(cfg));
    }
    out += '}';
    return out;
}

} // namespace simaccel
