// A small recursive-descent JSON reader (RFC 8259 minus \u surrogate pairs, which stats never use).
#include "json.h"

#include <charconv>
#include <cstdlib>

// GCC 12 reports moved-from std::variant members of the recursive Json as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace simaccel::test {

class JsonParser {
  public:
    explicit JsonParser(std::string_view s) : s_(s) {}

    bool document(Json *out) {
        if (!value(out, 0))
            return false;
        ws();
        return pos_ == s_.size();
    }
    std::size_t pos() const { return pos_; }

  private:
    static constexpr int kMaxDepth = 64;

    void ws() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' ||
                                    s_[pos_] == '\t'))
            ++pos_;
    }
    bool eat(char c) {
        ws();
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    bool literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) != word)
            return false;
        pos_ += word.size();
        return true;
    }
    bool string(std::string *out) {
        if (!eat('"'))
            return false;
        while (pos_ < s_.size()) {
            char c = s_[pos_++];
            if (c == '"')
                return true;
            if (c != '\\') {
                out->push_back(c);
                continue;
            }
            if (pos_ >= s_.size())
                return false;
            switch (char e = s_[pos_++]) {
            case 'n': out->push_back('\n'); break;
            case 't': out->push_back('\t'); break;
            case 'r': out->push_back('\r'); break;
            case 'b': out->push_back('\b'); break;
            case 'f': out->push_back('\f'); break;
            case 'u': {
                if (pos_ + 4 > s_.size())
                    return false;
                unsigned cp = 0;
                auto [p, ec] = std::from_chars(s_.data() + pos_, s_.data() + pos_ + 4, cp, 16);
                if (ec != std::errc() || p != s_.data() + pos_ + 4)
                    return false;
                pos_ += 4;
                out->push_back(cp < 0x80 ? static_cast<char>(cp) : '?');
                break;
            }
            default: out->push_back(e); break;
            }
        }
        return false;
    }
    bool value(Json *out, int depth) {
        if (depth > kMaxDepth)
            return false;
        ws();
        if (pos_ >= s_.size())
            return false;
        char c = s_[pos_];
        if (c == '{') {
            ++pos_;
            Json::Object obj;
            if (!eat('}')) {
                do {
                    std::string key;
                    Json v;
                    if (!string(&key) || !eat(':') || !value(&v, depth + 1))
                        return false;
                    obj.insert_or_assign(std::move(key), std::move(v));
                } while (eat(','));
                if (!eat('}'))
                    return false;
            }
            out->v_ = std::move(obj);
            return true;
        }
        if (c == '[') {
            ++pos_;
            Json::Array arr;
            if (!eat(']')) {
                do {
                    Json v;
                    if (!value(&v, depth + 1))
                        return false;
                    arr.push_back(std::move(v));
                } while (eat(','));
                if (!eat(']'))
                    return false;
            }
            out->v_ = std::move(arr);
            return true;
        }
        if (c == '"') {
            std::string str;
            if (!string(&str))
                return false;
            out->v_ = std::move(str);
            return true;
        }
        if (literal("true")) {
            out->v_ = true;
            return true;
        }
        if (literal("false")) {
            out->v_ = false;
            return true;
        }
        if (literal("null")) {
            out->v_ = std::monostate{};
            return true;
        }
        // strtod needs a terminated string; numbers are short.
        std::size_t end = pos_;
        while (end < s_.size() && std::string_view("+-0123456789.eE").find(s_[end]) !=
                                      std::string_view::npos)
            ++end;
        if (end == pos_)
            return false;
        std::string num(s_.substr(pos_, end - pos_));
        char *stop = nullptr;
        double d = std::strtod(num.c_str(), &stop);
        if (stop != num.c_str() + num.size())
            return false;
        pos_ = end;
        out->v_ = d;
        return true;
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

std::optional<Json> Json::parse(std::string_view text, std::string *err) {
    Json j;
    JsonParser p(text);
    if (!p.document(&j)) {
        if (err)
            *err = "malformed JSON near offset " + std::to_string(p.pos());
        return std::nullopt;
    }
    return j;
}

std::optional<double> Json::number() const noexcept {
    if (const double *d = std::get_if<double>(&v_))
        return *d;
    return std::nullopt;
}

std::optional<std::string> Json::text() const {
    if (const std::string *s = std::get_if<std::string>(&v_))
        return *s;
    if (const double *d = std::get_if<double>(&v_)) {
        if (*d == static_cast<double>(static_cast<long long>(*d)))
            return std::to_string(static_cast<long long>(*d));
        return std::to_string(*d);
    }
    if (const bool *b = std::get_if<bool>(&v_))
        return *b ? "true" : "false";
    return std::nullopt;
}

const Json *Json::get(std::string_view key) const noexcept {
    if (const Object *o = object())
        if (auto it = o->find(key); it != o->end())
            return &it->second;
    return nullptr;
}

} // namespace simaccel::test
