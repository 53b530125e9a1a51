// The stats readers (see stats.h).
#include "stats.h"

#include <vector>

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include "ossl_ptr.h"

namespace simaccel::test {

std::optional<std::string> engine_stats_text(ENGINE *e, bool histograms, std::string *err) {
#ifdef OPENSSL_NO_ENGINE
    (void)e, (void)histograms;
    *err = "this OpenSSL has no ENGINE API";
    return std::nullopt;
#else
    // GET_STATS fills a char * that the caller frees with OPENSSL_free.
    char *text = nullptr;
    if (e == nullptr || !ENGINE_ctrl_cmd(e, "GET_STATS", histograms ? 1 : 0, &text, nullptr, 0) ||
        text == nullptr) {
        *err = "ENGINE_ctrl_cmd(GET_STATS) failed: " + drain_errors();
        OPENSSL_free(text);
        return std::nullopt;
    }
    std::string s(text);
    OPENSSL_free(text);
    return s;
#endif
}

std::optional<std::string> provider_stats_text(OSSL_PROVIDER *p, std::string *err) {
    // The parameter may be answered as a pointer or copied into our buffer; accept both.
    const char *ptr = nullptr;
    OSSL_PARAM by_ptr[] = {OSSL_PARAM_utf8_ptr("simaccel-stats", &ptr, 0), OSSL_PARAM_END};
    if (p != nullptr && OSSL_PROVIDER_get_params(p, by_ptr) && OSSL_PARAM_modified(by_ptr) && ptr)
        return std::string(ptr);
    ERR_clear_error();
    std::vector<char> buf(1 << 20);
    OSSL_PARAM by_copy[] = {OSSL_PARAM_utf8_string("simaccel-stats", buf.data(), buf.size()),
                            OSSL_PARAM_END};
    if (p != nullptr && OSSL_PROVIDER_get_params(p, by_copy) && OSSL_PARAM_modified(by_copy))
        return std::string(buf.data());
    *err = "OSSL_PROVIDER_get_params(simaccel-stats) failed: " + drain_errors();
    return std::nullopt;
}

OpCounters StatsSnapshot::op(std::string_view op_class) const {
    OpCounters c;
    if (!doc_)
        return c;
    // The class object is the one carrying the counters, wherever the document nests it.
    const Json *o =
        doc_->find(op_class, [](const Json &j) { return j.get("submitted") != nullptr; });
    if (o == nullptr)
        return c;
    auto field = [o](std::string_view k) -> std::uint64_t {
        const Json *v = o->get(k);
        auto n = v ? v->number() : std::nullopt;
        return n ? static_cast<std::uint64_t>(*n) : 0;
    };
    c.submitted = field("submitted");
    c.completed = field("completed");
    c.failed = field("failed");
    c.busy = field("busy");
    c.retried = field("retried");
    c.fallback = field("fallback");
    c.inline_sw = field("software");
    return c;
}

std::optional<std::uint64_t> StatsSnapshot::device(std::string_view key) const {
    if (!doc_)
        return std::nullopt;
    const Json *v = doc_->get(key);
    if (v == nullptr) {
        if (const Json *dev = doc_->get("device"))
            v = dev->get(key);
    }
    auto n = v ? v->number() : std::nullopt;
    if (!n)
        return std::nullopt;
    return static_cast<std::uint64_t>(*n);
}

std::optional<std::string> StatsSnapshot::config(std::string_view key) const {
    if (!doc_)
        return std::nullopt;
    const Json *cfg = doc_->get("config");
    const Json *v = cfg ? cfg->get(key) : nullptr;
    return v ? v->text() : std::nullopt;
}

std::optional<std::string> StatsSnapshot::contract_violations() const {
    const Json *section = doc_ ? doc_->get("contract") : nullptr;
    const Json::Object *rules = section ? section->object() : nullptr;
    if (!rules)
        return std::nullopt;
    std::string out;
    for (const auto &[rule, entry] : *rules) {
        const Json *count = entry.get("count");
        const auto n = count ? count->number() : std::nullopt;
        if (!n || *n != 0)
            out += (out.empty() ? "" : "; ") + rule + " " +
                   (n ? std::to_string(static_cast<std::uint64_t>(*n)) : "?");
    }
    return out;
}

StatsSnapshot parse_stats(const std::string &text) {
    std::string err;
    auto doc = Json::parse(text, &err);
    if (!doc) {
        ADD_FAILURE() << "stats are not JSON (" << err << "): " << text;
        return {};
    }
    return StatsSnapshot(std::move(*doc));
}

namespace {
StatsSnapshot parsed_or_failure(const std::optional<std::string> &text, const std::string &err) {
    if (!text) {
        ADD_FAILURE() << "cannot read the stats: " << err;
        return {};
    }
    return parse_stats(*text);
}
} // namespace

StatsSnapshot engine_stats(ENGINE *e) {
    std::string err;
    auto text = engine_stats_text(e, false, &err);
    return parsed_or_failure(text, err);
}

StatsSnapshot provider_stats(OSSL_PROVIDER *p) {
    std::string err;
    auto text = provider_stats_text(p, &err);
    return parsed_or_failure(text, err);
}

} // namespace simaccel::test
