// Row-to-field mapping.
#include "backends/sql/fields.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "util/var_expand.hpp"

namespace postern::backend::sql {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

PassRow pass_row(const std::vector<std::string>& columns, const Row& row, std::string_view request_user) {
    PassRow out(request_user);
    for (std::size_t i = 0; i < columns.size() && i < row.size(); ++i) {
        const std::string name = lower(columns[i]);
        if (name == "password" || name == "password_noscheme") out.password_column = true;
        if (row[i]) out.add(name, *row[i]);  // NULL: the field is not set
    }
    return out;
}

UserRow user_row(const std::vector<std::string>& columns, const Row& row) {
    UserRow out;
    for (std::size_t i = 0; i < columns.size() && i < row.size(); ++i) {
        if (!row[i]) continue;
        const std::string name = lower(columns[i]);
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
        const std::string name = lower(columns[i]);
        if (name == "user") user = row[i];
        else if (name == "username") username = row[i];
        else if (name == "domain") domain = row[i];
    }
    if (user && !user->empty()) return user;
    if (username && !username->empty()) return domain && !domain->empty() ? *username + "@" + *domain : *username;
    return std::nullopt;
}

}  // namespace postern::backend::sql
