// Checks for names that end up inside NATS subjects (queue names, task ids) or KV keys
// (schedule ids). A bad name is rejected with a message naming the field, the offending
// character and the rule, instead of silently breaking the subject layout.
#pragma once

#include <cstddef>
#include <string_view>

namespace omniq {

/// Limits; they keep subjects and keys well inside the server's 64 KiB header budget.
inline constexpr std::size_t max_token_length = 128;
inline constexpr std::size_t max_kv_key_length = 256;
inline constexpr std::size_t max_func_length = 256;

/// True when `value` is a safe subject token: [A-Za-z0-9_-]{1,128}.
bool is_valid_token(std::string_view value) noexcept;

/// Throws omniq::Error(errc::invalid_name) unless `value` is a safe subject token, e.g.
///   queue_name "a.b" is invalid: '.' at position 1 is not allowed (use A-Z a-z 0-9 _ -, 1 to 128 characters)
/// `field` names the thing being checked in the message. Non-printable bytes appear as `\xNN`.
void validate_token(std::string_view field, std::string_view value);

/// Throws omniq::Error(errc::invalid_name) unless `key` is a NATS KV key: [A-Za-z0-9_\-=/.],
/// 1 to 256 characters, no leading or trailing '.', no "..", not starting with "_kv".
void validate_kv_key(std::string_view field, std::string_view key);

}  // namespace omniq
