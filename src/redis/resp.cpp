// RESP encoding (written directly) and decoding (hiredis's parser building River's values), and
// the decoding of stream replies: the sans-I/O half of the Redis part. The only file that sees
// hiredis.

#include <river/redis/detail/command_units.hpp>
#include <river/redis/detail/resp.hpp>
#include <river/redis/detail/stream_entry.hpp>
#include <river/redis/request.hpp>
#include <river/redis/value.hpp>

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <stdexcept>
#include <vector>

namespace river::redis {

// ---- request --------------------------------------------------------------------------------

namespace {

void append_length_line(std::string& out, char prefix, std::size_t n) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  (void)ec;
  out.push_back(prefix);
  out.append(digits, end);
  out.append("\r\n", 2);
}

}  // namespace

// RESP written directly: `*N\r\n` then `$LEN\r\nARG\r\n` per argument.
void request::push(std::span<const std::string_view> args) {
  if (args.empty()) throw std::invalid_argument("river::redis::request: a command needs a name");
  std::size_t size = 16;
  for (auto a : args) size += a.size() + 16;
  payload_.reserve(payload_.size() + size);
  append_length_line(payload_, '*', args.size());
  for (auto a : args) {
    append_length_line(payload_, '$', a.size());
    payload_.append(a.data(), a.size());
    payload_.append("\r\n", 2);
  }
  ++commands_;
  replies_ += detail::replies_for(args[0], args.size());
}

// ---- value ----------------------------------------------------------------------------------

namespace {
void render(const value& v, std::string& out) {
  switch (v.type) {
    case value::kind::nil: out += "(nil)"; return;
    case value::kind::string:
    case value::kind::status:
      out += '"';
      out += v.text;
      out += '"';
      return;
    case value::kind::error:
      out += "(error) ";
      out += v.text;
      return;
    case value::kind::integer: out += std::to_string(v.integer); return;
    case value::kind::array:
      out += '[';
      for (std::size_t i = 0; i < v.elements.size(); ++i) {
        if (i) out += ", ";
        render(v.elements[i], out);
      }
      out += ']';
      return;
  }
}
}  // namespace

std::string to_string(const value& v) {
  std::string out;
  render(v, out);
  return out;
}

// ---- reply parser ---------------------------------------------------------------------------

namespace detail {

namespace {

struct reader_deleter {
  void operator()(redisReader* r) const noexcept { redisReaderFree(r); }
};

// hiredis parses; these build the reply straight into River's `value` tree, in the parser's own
// root, instead of hiredis's `redisReply` objects that would then be copied: a reply costs no
// allocation beyond its arrays and long strings.
value* slot_for(const redisReadTask* task) {
  if (task->parent) {
    // Elements arrive in order; a parent does not move while its elements arrive, since its own
    // parent gets its next element only after this one is complete.
    auto& elements = static_cast<value*>(task->parent->obj)->elements;
    elements.emplace_back();
    return &elements.back();
  }
  auto* root = static_cast<value*>(task->privdata);
  *root = value{};
  return root;
}

void* create_string(const redisReadTask* task, char* str, size_t len) {
  auto* v = slot_for(task);
  v->type = task->type == REDIS_REPLY_ERROR    ? value::kind::error
            : task->type == REDIS_REPLY_STATUS ? value::kind::status
                                               : value::kind::string;
  v->text.assign(str, len);
  return v;
}

// The number of elements is what the server announces, not what it sent: memory grows with the
// elements that arrive, so that `*2000000000` costs no more than the bytes behind it.
constexpr std::size_t max_reserved_elements = 16;

void* create_array(const redisReadTask* task, int elements) {
  auto* v = slot_for(task);
  v->type = value::kind::array;
  v->elements.reserve(std::min(static_cast<std::size_t>(elements), max_reserved_elements));
  return v;
}

void* create_integer(const redisReadTask* task, long long i) {
  auto* v = slot_for(task);
  v->type = value::kind::integer;
  v->integer = i;
  return v;
}

void* create_nil(const redisReadTask* task) { return slot_for(task); }

// The tree lives in the parser: nothing to free.
void free_object(void*) {}

redisReplyObjectFunctions value_functions = {create_string, create_array, create_integer, create_nil, free_object};

}  // namespace

struct reply_parser::impl {
  std::unique_ptr<redisReader, reader_deleter> reader;
  value root;
  std::size_t max_buffer = 0;
  bool failed = false;
};

reply_parser::reply_parser(std::size_t max_buffer) : impl_(std::make_unique<impl>()) {
  impl_->reader.reset(redisReaderCreateWithFunctions(&value_functions));
  if (!impl_->reader) throw std::bad_alloc();
  impl_->reader->privdata = &impl_->root;
  impl_->max_buffer = max_buffer;
}
reply_parser::~reply_parser() = default;
reply_parser::reply_parser(reply_parser&&) noexcept = default;
reply_parser& reply_parser::operator=(reply_parser&&) noexcept = default;

error_code reply_parser::feed(const char* data, std::size_t size) {
  if (impl_->failed) return error::protocol_error;
  if (size == 0) return {};
  if (buffered() + size > impl_->max_buffer) {
    impl_->failed = true;
    return error::read_buffer_exceeded;
  }
  if (redisReaderFeed(impl_->reader.get(), data, size) != REDIS_OK) {
    impl_->failed = true;
    return error::protocol_error;
  }
  return {};
}

error_code reply_parser::next(std::optional<value>& out) {
  out.reset();
  if (impl_->failed) return error::protocol_error;
  void* raw = nullptr;
  if (redisReaderGetReply(impl_->reader.get(), &raw) != REDIS_OK) {
    impl_->failed = true;
    return error::protocol_error;
  }
  if (raw == nullptr) return {};
  out = std::move(impl_->root);
  return {};
}

std::size_t reply_parser::buffered() const noexcept {
  const auto* r = impl_->reader.get();
  return r->len - r->pos;
}

std::string reply_parser::last_error() const {
  const auto* r = impl_->reader.get();
  return r->err ? std::string(r->errstr) : std::string();
}

}  // namespace detail
}  // namespace river::redis
