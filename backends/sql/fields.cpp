// Row-to-field mapping.
#include "backends/sql/fields.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "auth/request_info.hpp"
#include "util/var_expand.hpp"
#include "util/encoding.hpp"

namespace postern::backend::sql {

namespace {

std::optional<std::string> field_of(const Fields& f, std::string_view name) {
    for (auto it = f.rbegin(); it != f.rend(); ++it)
        if (it->first == name) return it->second;
    return std::nullopt;
}

void erase_field(Fields& f, std::string_view name) {
    std::erase_if(f, [&](const auto& p) { return p.first == name; });
}

// The column named `name` (case-insensitively): its index, or npos.
std::size_t column_index(const std::vector<std::string>& columns, std::string_view name) {
    const std::string want = lowercase(name);
    for (std::size_t i = 0; i < columns.size(); ++i)
        if (lowercase(columns[i]) == want) return i;
    return std::string::npos;
}

// NAME:default / NAME:remove: the base name and which suffix it had.
enum class Suffix { None, Default, Remove };
std::pair<std::string, Suffix> split_suffix(std::string_view name) {
    if (name.size() > 8 && name.ends_with(":default")) return {std::string(name.substr(0, name.size() - 8)), Suffix::Default};
    if (name.size() > 7 && name.ends_with(":remove")) return {std::string(name.substr(0, name.size() - 7)), Suffix::Remove};
    return {std::string(name), Suffix::None};
}

// Every template expanded with `vars`, before any field is set (Dovecot
// expands the whole fields { } list at once).
Result<std::vector<std::pair<std::string, std::string>>> expand_all(const FieldTemplates& fields,
                                                                    const util::VarLookup& vars) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& f : fields) {
        auto v = util::expand(f.tmpl, vars);
        if (!v) return fail("field " + f.name + ": " + v.error().message);
        out.emplace_back(f.name, std::move(*v));
    }
    return out;
}

}  // namespace

std::string check_field_template(std::string_view tmpl) {
    const auth::RequestInfo none;
    util::VarLookup vars = [&none](std::string_view n) -> std::optional<std::string> {
        for (std::string_view p : {"sql:", "passdb:", "userdb:"})
            if (n.size() > p.size() && n.starts_with(p)) return std::string();
        return none.var(n);
    };
    auto r = util::expand(tmpl, vars);
    return r ? std::string() : r.error().message;
}

Result<void> apply_pass_fields(PassRow& out, const FieldTemplates& fields, const std::vector<std::string>& columns,
                               const Row& row, const util::VarLookup& request, bool import_all) {
    if (fields.empty()) return {};
    // What %{passdb:NAME} reads: the fields the columns set (Dovecot's
    // extra_fields, where user/username/domain and userdb_* are kept too).
    Fields imported;
    for (std::size_t i = 0; i < columns.size() && i < row.size(); ++i) {
        const std::string name = lowercase(columns[i]);
        if (row[i] && import_all && name != "password" && name != "password_noscheme")
            imported.emplace_back(name, *row[i]);
    }
    util::VarLookup vars = [&](std::string_view n) -> std::optional<std::string> {
        if (n.starts_with("sql:")) {
            const auto i = column_index(columns, n.substr(4));
            if (i == std::string::npos || i >= row.size()) return std::nullopt;
            return row[i] ? *row[i] : std::string("yes");  // Dovecot's auth_fields_add(NULL)
        }
        if (n.starts_with("passdb:")) return field_of(imported, lowercase(n.substr(7))).value_or(std::string());
        if (n.starts_with("userdb:")) return field_of(out.userdb, lowercase(n.substr(7))).value_or(std::string());
        return request(n);
    };
    auto values = expand_all(fields, vars);
    if (!values) return tl::unexpected(values.error());
    for (auto& [raw_name, value] : *values) {
        auto [name, suffix] = split_suffix(lowercase(raw_name));
        const bool to_userdb = name.starts_with("userdb_") && name.size() > 7;
        Fields& where = to_userdb ? out.userdb : out.extra;
        const std::string key = to_userdb ? name.substr(7) : name;
        const bool is_set = name == "password" || name == "password_noscheme" ? out.password.has_value()
                                                                               : field_of(where, key).has_value();
        if (suffix == Suffix::Default && is_set) continue;
        if (name == "password" || name == "password_noscheme") {
            if (suffix == Suffix::Remove) out.password.reset();
            else out.add(name, std::move(value));
            continue;
        }
        erase_field(where, key);
        if (suffix != Suffix::Remove) out.add(name, std::move(value));
    }
    return {};
}

Result<void> apply_user_fields(UserRow& out, const FieldTemplates& fields, const std::vector<std::string>& columns,
                               const Row& row, const util::VarLookup& request) {
    if (fields.empty()) return {};
    util::VarLookup vars = [&](std::string_view n) -> std::optional<std::string> {
        if (n.starts_with("sql:")) {
            const auto i = column_index(columns, n.substr(4));
            if (i == std::string::npos || i >= row.size() || !row[i]) return std::nullopt;  // NULL: not a field
            return *row[i];
        }
        if (n.starts_with("userdb:")) return field_of(out.fields, lowercase(n.substr(7))).value_or(std::string());
        if (n.starts_with("passdb:")) return std::string();
        return request(n);
    };
    auto values = expand_all(fields, vars);
    if (!values) return tl::unexpected(values.error());
    for (auto& [raw_name, value] : *values) {
        auto [name, suffix] = split_suffix(lowercase(raw_name));
        if (name == "user") {
            if (suffix != Suffix::Remove && !value.empty()) out.user = std::move(value);
            continue;
        }
        if (suffix == Suffix::Default && field_of(out.fields, name)) continue;
        erase_field(out.fields, name);
        if (suffix != Suffix::Remove) out.fields.emplace_back(name, std::move(value));
    }
    return {};
}

PassRow pass_row(const std::vector<std::string>& columns, const Row& row, std::string_view request_user,
                 bool import_all) {
    PassRow out(request_user);
    for (std::size_t i = 0; i < columns.size() && i < row.size(); ++i) {
        const std::string name = lowercase(columns[i]);
        if (name == "password" || name == "password_noscheme") out.password_column = true;
        if (row[i] && import_all) out.add(name, *row[i]);  // NULL: the field is not set
    }
    return out;
}

UserRow user_row(const std::vector<std::string>& columns, const Row& row, bool import_all) {
    UserRow out;
    for (std::size_t i = 0; i < columns.size() && i < row.size(); ++i) {
        if (!row[i] || !import_all) continue;
        const std::string name = lowercase(columns[i]);
        if (name == "user") {
            out.user = *row[i];
            continue;
        }
        // userdb_ prefix is accepted too (a passdb query reused as user_query).
        out.fields.emplace_back(name.rfind("userdb_", 0) == 0 && name.size() > 7 ? name.substr(7) : name, *row[i]);
    }
    return out;
}

std::optional<std::string> iterate_user(const std::vector<std::string>& columns, const Row& row) {
    std::optional<std::string> user, username, domain;
    for (std::size_t i = 0; i < columns.size() && i < row.size(); ++i) {
        if (!row[i]) continue;
        const std::string name = lowercase(columns[i]);
        if (name == "user") user = row[i];
        else if (name == "username") username = row[i];
        else if (name == "domain") domain = row[i];
    }
    if (user && !user->empty()) return user;
    if (username && !username->empty()) return domain && !domain->empty() ? *username + "@" + *domain : *username;
    return std::nullopt;
}

}  // namespace postern::backend::sql
