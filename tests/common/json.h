// A small JSON reader for the stats text (contract.md §13): enough to look counters up by name
// without depending on how the document nests them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace simaccel::test {

class Json {
  public:
    using Object = std::map<std::string, Json, std::less<>>;
    using Array = std::vector<Json>;

    // nullopt on malformed input (with the offset of the problem in *err).
    static std::optional<Json> parse(std::string_view text, std::string *err = nullptr);

    bool is_object() const noexcept { return std::holds_alternative<Object>(v_); }
    bool is_number() const noexcept { return std::holds_alternative<double>(v_); }
    bool is_string() const noexcept { return std::holds_alternative<std::string>(v_); }
    const Object *object() const noexcept { return std::get_if<Object>(&v_); }
    const Array *array() const noexcept { return std::get_if<Array>(&v_); }
    std::optional<double> number() const noexcept;
    // Numbers and strings as text ("1024", "fixed:2ms"); nullopt for other kinds.
    std::optional<std::string> text() const;

    // Member `key` of this object, or null.
    const Json *get(std::string_view key) const noexcept;
    // Depth-first search for the first object member named `key` whose value satisfies `pred`.
    template <class Pred> const Json *find(std::string_view key, Pred pred) const {
        if (const Object *o = object()) {
            if (auto it = o->find(key); it != o->end() && pred(it->second))
                return &it->second;
            for (const auto &[k, v] : *o)
                if (const Json *j = v.find(key, pred))
                    return j;
        } else if (const Array *a = array()) {
            for (const Json &v : *a)
                if (const Json *j = v.find(key, pred))
                    return j;
        }
        return nullptr;
    }

  private:
    friend class JsonParser;
    std::variant<std::monostate, bool, double, std::string, Array, Object> v_;
};

} // namespace simaccel::test
