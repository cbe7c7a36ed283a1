// Bounds-checked big-endian reading and writing over borrowed buffers; the only way the codec
// touches bytes. A reader or writer that runs past its end turns "bad" and stays bad, so a
// parser checks once at the end instead of after every field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace tern::wire {

using Bytes = std::span<const std::uint8_t>;
using MutableBytes = std::span<std::uint8_t>;

inline std::uint16_t loadU16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
inline std::uint32_t loadU32(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}
inline void storeU16(std::uint8_t* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
inline void storeU32(std::uint8_t* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

// Attributes and ChannelData are padded to a multiple of four bytes.
constexpr std::size_t padTo4(std::size_t n) noexcept { return (n + 3) & ~std::size_t{3}; }

inline std::string_view asText(Bytes b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes asBytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

class ByteReader {
 public:
  explicit ByteReader(Bytes data) noexcept : data_(data) {}

  std::uint8_t u8() noexcept { return take(1) ? data_[pos_ - 1] : 0; }
  std::uint16_t u16() noexcept { return take(2) ? loadU16(&data_[pos_ - 2]) : 0; }
  std::uint32_t u32() noexcept { return take(4) ? loadU32(&data_[pos_ - 4]) : 0; }
  Bytes bytes(std::size_t n) noexcept { return take(n) ? data_.subspan(pos_ - n, n) : Bytes{}; }
  void skip(std::size_t n) noexcept { take(n); }

  std::size_t remaining() const noexcept { return bad_ ? 0 : data_.size() - pos_; }
  std::size_t position() const noexcept { return pos_; }
  bool ok() const noexcept { return !bad_; }
  bool atEnd() const noexcept { return ok() && pos_ == data_.size(); }

 private:
  bool take(std::size_t n) noexcept {
    if (bad_ || data_.size() - pos_ < n) {
      bad_ = true;
      return false;
    }
    pos_ += n;
    return true;
  }

  Bytes data_;
  std::size_t pos_ = 0;
  bool bad_ = false;
};

class ByteWriter {
 public:
  explicit ByteWriter(MutableBytes buffer) noexcept : buf_(buffer) {}

  void u8(std::uint8_t v) noexcept {
    if (auto* p = take(1)) *p = v;
  }
  void u16(std::uint16_t v) noexcept {
    if (auto* p = take(2)) storeU16(p, v);
  }
  void u32(std::uint32_t v) noexcept {
    if (auto* p = take(4)) storeU32(p, v);
  }
  void bytes(Bytes b) noexcept {
    if (auto* p = take(b.size()); p && !b.empty()) std::memcpy(p, b.data(), b.size());
  }
  void zeros(std::size_t n) noexcept {
    if (auto* p = take(n); p && n) std::memset(p, 0, n);
  }
  // Reserves n bytes to be filled in later (a length or a MAC); null when out of room.
  std::uint8_t* reserve(std::size_t n) noexcept { return take(n); }

  void fail() noexcept { bad_ = true; }

  std::size_t size() const noexcept { return pos_; }
  bool ok() const noexcept { return !bad_; }
  std::uint8_t* data() noexcept { return buf_.data(); }
  MutableBytes written() noexcept { return buf_.first(pos_); }

 private:
  std::uint8_t* take(std::size_t n) noexcept {
    if (bad_ || buf_.size() - pos_ < n) {
      bad_ = true;
      return nullptr;
    }
    pos_ += n;
    return buf_.data() + (pos_ - n);
  }

  MutableBytes buf_;
  std::size_t pos_ = 0;
  bool bad_ = false;
};

}  // namespace tern::wire
